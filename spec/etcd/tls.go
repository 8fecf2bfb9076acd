package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/credentials"

	"github.com/netreconcile/netreconcile/spec"
)

// SchemeTLS is the -f URL scheme of an etcd prefix reached over TLS.
const SchemeTLS = "etcds"

// TLSFiles are the PEM files of etcds:// connections (--etcd-ca,
// --etcd-cert, --etcd-key). Without CA the server is verified against
// the system's roots; without Cert and Key no client certificate is
// offered (an etcd with client-cert-auth then refuses the connection).
type TLSFiles struct {
	CA, Cert, Key string
}

// Given reports whether any file is named.
func (f TLSFiles) Given() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Config reads and checks the files. The client certificate is read again
// at each connection (gRPC reconnects after an outage), so a renewed
// certificate, a Kubernetes Secret updated in place, is taken without a
// restart.
func (f TLSFiles) Config() (*tls.Config, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("--etcd-cert and --etcd-key go together: give both (a client certificate and its key) or neither")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("--etcd-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-ca %s: no PEM certificate in it", f.CA)
		}
	}
	if f.Cert != "" {
		if _, err := f.keyPair(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return f.keyPair() }
	}
	return cfg, nil
}

// keyPair reads the client certificate and its key.
func (f TLSFiles) keyPair() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("--etcd-cert %s, --etcd-key %s: %w", f.Cert, f.Key, err)
	}
	return &c, nil
}

// Openers are the spec.Openers of etcd:// and etcds://, the latter with
// the TLS files, read at the first etcds:// source. With files given, a
// plain etcd:// source is refused: the operator meant TLS, and sending
// the topology's reads in clear to a TLS etcd would only fail later and
// less clearly.
func Openers(files TLSFiles) map[string]spec.Opener {
	config := sync.OnceValues(files.Config)
	return map[string]spec.Opener{
		Scheme: func(arg string) (spec.Provider, error) {
			if files.Given() {
				return nil, fmt.Errorf("-f %s: a plain connection, but --etcd-ca, --etcd-cert or --etcd-key is given, for TLS: write %s://%s", arg, SchemeTLS, arg[len(Scheme)+3:])
			}
			return Open(arg)
		},
		SchemeTLS: func(arg string) (spec.Provider, error) {
			cfg, err := config()
			if err != nil {
				return nil, err
			}
			return OpenTLS(arg, cfg)
		},
	}
}

// tlsCreds are gRPC's TLS credentials keeping the last failure of a
// connection's TLS: gRPC retries it in silence until the read's timeout,
// whose error alone would not say that a certificate is at fault.
type tlsCreds struct {
	credentials.TransportCredentials
	failed *atomic.Pointer[tlsError]
}

func (c tlsCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	addr := raw.RemoteAddr().String()
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		c.failed.Store(&tlsError{addr: addr, err: err})
		return nil, nil, err
	}
	return &alertConn{Conn: conn, addr: addr, failed: c.failed}, info, nil
}

func (c tlsCreds) Clone() credentials.TransportCredentials {
	return tlsCreds{TransportCredentials: c.TransportCredentials.Clone(), failed: c.failed}
}

// alertConn is a TLS connection that notes the server's alert. With TLS
// 1.3 the server checks the client's certificate after the handshake
// ended on the client's side: its refusal comes as the first read.
type alertConn struct {
	net.Conn
	addr   string
	failed *atomic.Pointer[tlsError]
	read   atomic.Bool // a read succeeded: the connection is good
}

func (c *alertConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	switch {
	case remoteAlert(err):
		c.failed.Store(&tlsError{addr: c.addr, err: err})
	case n > 0 && !c.read.Swap(true):
		c.failed.Store(nil)
	}
	return n, err
}

// tlsError is a connection's TLS failure, with what to check.
type tlsError struct {
	addr string
	err  error
}

func (e *tlsError) Error() string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var record tls.RecordHeaderError
	why := "TLS failed"
	switch {
	case errors.As(e.err, &unknown):
		why = "the server's certificate is not trusted (check --etcd-ca)"
	case errors.As(e.err, &host):
		why = "the server's certificate is not for the address dialled"
	case errors.As(e.err, &record), errors.Is(e.err, io.EOF):
		why = "the server does not speak TLS (a plain etcd:// endpoint?)"
	case remoteAlert(e.err):
		why = "the server refused the connection (check --etcd-cert and --etcd-key: its CA must trust them)"
	}
	return fmt.Sprintf("TLS with %s: %s: %v", e.addr, why, e.err)
}

func (e *tlsError) Unwrap() error { return e.err }

// remoteAlert reports whether err is the server's TLS alert (crypto/tls
// returns it as a *net.OpError "remote error").
func remoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}
