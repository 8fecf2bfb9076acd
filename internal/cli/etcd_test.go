package cli

import (
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/etcdtest"
)

// The --etcd-* flags reach an etcds:// source; wrong uses are refused
// before anything is read.
func TestEtcdTLSFlags(t *testing.T) {
	s := etcdtest.StartTLS(t)
	s.Put("t/a.yaml", topoOnePod)
	tlsArgs := []string{"--etcd-ca", s.Certs.CA, "--etcd-cert", s.Certs.ClientCert, "--etcd-key", s.Certs.ClientKey}
	out, code, msg := run(t, append([]string{"validate", "-f", s.URL("t/")}, tlsArgs...)...)
	if code != 0 || !strings.Contains(out, "valid (1 nodes, 2 pods, 0 services, 0 policies)") {
		t.Errorf("validate -f etcds:// with the TLS flags: exit %d, %q %q", code, out, msg)
	}
	plain := "etcd://" + s.Addr + "/t/"
	_, code, msg = run(t, append([]string{"validate", "-f", plain}, tlsArgs...)...)
	if code != 1 || !strings.Contains(msg, "-f "+plain+": a plain connection, but --etcd-ca, --etcd-cert or --etcd-key is given, for TLS: write etcds://"+s.Addr+"/t/") {
		t.Errorf("validate -f etcd:// with the TLS flags: exit %d, %q", code, msg)
	}
	_, code, msg = run(t, "validate", "-f", s.URL("t/"), "--etcd-cert", s.Certs.ClientCert)
	if code != 1 || !strings.Contains(msg, "--etcd-cert and --etcd-key go together") {
		t.Errorf("validate --etcd-cert without --etcd-key: exit %d, %q", code, msg)
	}
}
