// Package etcdtest runs an embedded etcd server for tests: one member in
// a temporary directory, listening on free ports of 127.0.0.1 (loopback
// of the test's own namespace; nothing of the host's network changes).
// The server can be stopped and started again on the same ports and data,
// as an outage does. StartTLS runs it behind TLS with client
// certificates, as a production etcd is. For tests only: the binary does
// not link it.
package etcdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Server is an embedded etcd member.
type Server struct {
	t      testing.TB
	cfg    *embed.Config
	e      *embed.Etcd
	Addr   string // HOST:PORT of its client endpoint
	Certs  *Certs // of a TLS member; nil: plain
	client *clientv3.Client
}

// Start starts a member; t.Cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, nil)
}

// StartTLS starts a member that speaks TLS only on its client port and
// refuses a client without a certificate of its CA (see Certs).
func StartTLS(t testing.TB) *Server {
	t.Helper()
	c := NewCerts(t)
	return start(t, &c)
}

func start(t testing.TB, certs *Certs) *Server {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	client, peer := freeURL(t), freeURL(t)
	if certs != nil {
		client.Scheme = "https"
		tlsInfo := &cfg.ClientTLSInfo
		tlsInfo.CertFile, tlsInfo.KeyFile, tlsInfo.TrustedCAFile = certs.ServerCert, certs.ServerKey, certs.CA
		tlsInfo.ClientCertAuth = true
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	s := &Server{t: t, cfg: cfg, Addr: client.Host, Certs: certs}
	s.Restart()
	t.Cleanup(func() {
		if s.client != nil {
			s.client.Close()
		}
		s.Stop()
	})
	return s
}

// freeURL is an http URL on a port of 127.0.0.1 free now.
func freeURL(t testing.TB) url.URL {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// Stop stops the member (an outage); its data stays for Restart.
func (s *Server) Stop() {
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}

// Restart starts the member again on its ports and data.
func (s *Server) Restart() {
	s.t.Helper()
	e, err := embed.StartEtcd(s.cfg)
	if err != nil {
		s.t.Fatalf("start embedded etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		s.t.Fatal("embedded etcd did not become ready in 30 s")
	}
	s.e = e
}

// URL is the -f argument of prefix on this member: etcds:// for a TLS
// member.
func (s *Server) URL(prefix string) string {
	if s.Certs != nil {
		return "etcds://" + s.Addr + "/" + prefix
	}
	return "etcd://" + s.Addr + "/" + prefix
}

// Client is a client of the member, made at the first call.
func (s *Server) Client() *clientv3.Client {
	s.t.Helper()
	if s.client == nil {
		cfg := clientv3.Config{Endpoints: []string{s.Addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
		if s.Certs != nil {
			cfg.TLS = s.clientTLS()
		}
		c, err := clientv3.New(cfg)
		if err != nil {
			s.t.Fatal(err)
		}
		s.client = c
	}
	return s.client
}

// clientTLS is the TLS configuration of the member's own client.
func (s *Server) clientTLS() *tls.Config {
	s.t.Helper()
	cert, err := tls.LoadX509KeyPair(s.Certs.ClientCert, s.Certs.ClientKey)
	if err != nil {
		s.t.Fatalf("etcd client TLS: %v", err)
	}
	ca, err := os.ReadFile(s.Certs.CA)
	if err != nil {
		s.t.Fatalf("etcd client TLS: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// Put writes key; Delete removes it. Both fail the test on error.
func (s *Server) Put(key, value string) int64 {
	s.t.Helper()
	resp, err := s.Client().Put(s.ctx(), key, value)
	if err != nil {
		s.t.Fatalf("etcd put %s: %v", key, err)
	}
	return resp.Header.Revision
}

// Delete removes key.
func (s *Server) Delete(key string) {
	s.t.Helper()
	if _, err := s.Client().Delete(s.ctx(), key); err != nil {
		s.t.Fatalf("etcd delete %s: %v", key, err)
	}
}

// Compact compacts the history up to rev.
func (s *Server) Compact(rev int64) {
	s.t.Helper()
	if _, err := s.Client().Compact(s.ctx(), rev, clientv3.WithCompactPhysical()); err != nil {
		s.t.Fatalf("etcd compact %d: %v", rev, err)
	}
}

func (s *Server) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	s.t.Cleanup(cancel)
	return ctx
}

// String names the member.
func (s *Server) String() string { return fmt.Sprintf("etcd at %s", s.Addr) }
