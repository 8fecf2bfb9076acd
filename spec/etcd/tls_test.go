package etcd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/etcdtest"
)

// clientFiles are the flags of s's client: its CA, certificate and key.
func clientFiles(s *etcdtest.Server) TLSFiles {
	return TLSFiles{CA: s.Certs.CA, Cert: s.Certs.ClientCert, Key: s.Certs.ClientKey}
}

func TestTLSFilesRefused(t *testing.T) {
	c := etcdtest.NewCerts(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.crt")
	const arg = "etcds://127.0.0.1:2379/t/"
	for _, tc := range []struct {
		files TLSFiles
		want  string
	}{
		{TLSFiles{Cert: c.ClientCert}, "--etcd-cert and --etcd-key go together"},
		{TLSFiles{Key: c.ClientKey}, "--etcd-cert and --etcd-key go together"},
		{TLSFiles{CA: missing}, "--etcd-ca: open " + missing + ": no such file"},
		{TLSFiles{CA: junk}, "--etcd-ca " + junk + ": no PEM certificate in it"},
		{TLSFiles{CA: c.ClientKey}, "--etcd-ca " + c.ClientKey + ": no PEM certificate in it"},
		{TLSFiles{Cert: junk, Key: c.ClientKey}, "--etcd-cert " + junk + ", --etcd-key " + c.ClientKey + ": tls: failed to find any PEM data in certificate input"},
		{TLSFiles{Cert: c.ClientCert, Key: c.ServerKey}, "--etcd-cert " + c.ClientCert + ", --etcd-key " + c.ServerKey + ": tls: private key does not match public key"},
		{TLSFiles{Cert: c.ClientCert, Key: missing}, "--etcd-key " + missing + ": open " + missing + ": no such file"},
	} {
		if _, err := Openers(tc.files)[SchemeTLS](arg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.files, err, tc.want)
		}
	}
	// TLS files with a plain source: the operator meant TLS.
	_, err := Openers(TLSFiles{CA: c.CA})[Scheme]("etcd://127.0.0.1:2379/t/")
	if want := "-f etcd://127.0.0.1:2379/t/: a plain connection, but --etcd-ca, --etcd-cert or --etcd-key is given, for TLS: write etcds://127.0.0.1:2379/t/"; err == nil || err.Error() != want {
		t.Errorf("a plain source with TLS files: %v, want %q", err, want)
	}
	// etcds:// without files: the system's roots, no client certificate.
	p, err := Openers(TLSFiles{})[SchemeTLS]("etcds://a:1,b:2//t/")
	if err != nil || p.String() != "etcds://a:1,b:2//t/" {
		t.Errorf("etcds:// without files: %v, %v", p, err)
	}
}

func TestSourcesTLS(t *testing.T) {
	s := etcdtest.StartTLS(t)
	s.Put("t/a.yaml", "a")
	rev := s.Put("t/b.yaml", "bb")
	p := openWith(t, clientFiles(s), s.URL("t/"))
	srcs, err := p.Sources(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	base := "etcds://" + s.Addr + "/t/"
	if len(srcs) != 2 || srcs[0].Name != base+"a.yaml" || string(srcs[1].Data) != "bb" || p.Revision() != rev {
		t.Errorf("Sources over TLS = %v at revision %d, want a.yaml and b.yaml under %s at %d", srcs, p.Revision(), base, rev)
	}
}

// Each refusal is a clear error naming the endpoint and what to check,
// within the read's timeout (the cases run at once: each waits it out).
func TestTLSRefusedClearly(t *testing.T) {
	s := etcdtest.StartTLS(t)
	s.Put("t/a.yaml", "a")
	plain := etcdtest.Start(t)
	plain.Put("t/a.yaml", "a")
	other := etcdtest.NewCerts(t)
	good := clientFiles(s)
	for name, tc := range map[string]struct {
		files TLSFiles
		addr  string
		want  string
	}{
		"no client certificate":              {TLSFiles{CA: s.Certs.CA}, s.Addr, "the server refused the connection (check --etcd-cert and --etcd-key: its CA must trust them): remote error: tls: certificate required"},
		"a client certificate of another CA": {TLSFiles{CA: s.Certs.CA, Cert: other.ClientCert, Key: other.ClientKey}, s.Addr, "the server refused the connection"},
		"another CA":                         {TLSFiles{CA: other.CA, Cert: good.Cert, Key: good.Key}, s.Addr, "the server's certificate is not trusted (check --etcd-ca): tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		"the system's roots":                 {TLSFiles{Cert: good.Cert, Key: good.Key}, s.Addr, "the server's certificate is not trusted (check --etcd-ca)"},
		"a plain server":                     {good, plain.Addr, "the server does not speak TLS (a plain etcd:// endpoint?)"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := openWith(t, tc.files, "etcds://"+tc.addr+"/t/").Sources(1 << 20)
			took := time.Since(start)
			want := "read topology etcds://" + tc.addr + "/t/: etcd cannot be reached at " + tc.addr + " (no answer within 5s): TLS with " + tc.addr + ": " + tc.want
			if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Sources = %v\nwant %s...", err, want)
			}
			if took > Timeout+2*time.Second {
				t.Errorf("refused after %v, over %v", took, Timeout)
			}
		})
	}
}

// The client certificate is read at each connection: renewed files are
// used without opening the source again.
func TestClientCertReadAtConnect(t *testing.T) {
	s := etcdtest.StartTLS(t)
	s.Put("t/a.yaml", "a")
	dir := t.TempDir()
	files := TLSFiles{CA: s.Certs.CA, Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key")}
	install := func(c etcdtest.Certs) {
		for from, to := range map[string]string{c.ClientCert: files.Cert, c.ClientKey: files.Key} {
			data, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(*s.Certs)
	p := openWith(t, files, s.URL("t/"))
	if _, err := p.Sources(1 << 20); err != nil {
		t.Fatal(err)
	}
	install(etcdtest.NewCerts(t)) // a certificate the server does not trust
	p.Close()
	if _, err := p.Sources(1 << 20); err == nil || !strings.Contains(err.Error(), "the server refused the connection") {
		t.Errorf("a new connection with an untrusted certificate: %v", err)
	}
	install(*s.Certs)
	p.Close()
	if _, err := p.Sources(1 << 20); err != nil {
		t.Errorf("a new connection with the trusted certificate again: %v", err)
	}
}
