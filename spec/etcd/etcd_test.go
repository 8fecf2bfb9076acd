package etcd

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/etcdtest"
	"github.com/netreconcile/netreconcile/spec"
)

func open(t *testing.T, arg string) *Prefix {
	t.Helper()
	return openWith(t, TLSFiles{}, arg)
}

// openWith opens arg, etcd:// or etcds://, as the command does.
func openWith(t *testing.T, files TLSFiles, arg string) *Prefix {
	t.Helper()
	scheme, _ := spec.URLScheme(arg)
	p, err := Openers(files)[scheme](arg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.(*Prefix).Close() })
	return p.(*Prefix)
}

func TestOpenRefuses(t *testing.T) {
	for arg, want := range map[string]string{
		"etcd://127.0.0.1:2379":        "give a key prefix",
		"etcd://127.0.0.1:2379/":       "give a key prefix",
		"etcd://127.0.0.1/topo/":       `endpoint "127.0.0.1": want HOST:PORT`,
		"etcd://a:1,b/topo/":           `endpoint "b": want HOST:PORT`,
		"http://127.0.0.1:2379/topo/x": "not an etcd:// URL",
	} {
		if _, err := Open(arg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want an error with %q", arg, err, want)
		}
	}
	p := open(t, "etcd://a:1,b:2//topo/")
	if p.prefix != "/topo/" || len(p.eps) != 2 || p.String() != "etcd://a:1,b:2//topo/" {
		t.Errorf("Open: prefix %q, endpoints %v, name %s", p.prefix, p.eps, p)
	}
}

func TestSources(t *testing.T) {
	s := etcdtest.Start(t)
	s.Put("topo/b.yaml", "b")
	s.Put("topo/a.yaml", "aaa")
	s.Put("topology-not-under-it", "x") // "topo/" is the prefix, not "topo"
	rev := s.Put("topo/c", "cc")
	p := open(t, s.URL("topo/"))
	srcs, err := p.Sources(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, src := range srcs {
		got = append(got, src.Name+"="+string(src.Data))
	}
	base := "etcd://" + s.Addr + "/topo/"
	want := []string{base + "a.yaml=aaa", base + "b.yaml=b", base + "c=cc"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Sources = %v, want %v (key order)", got, want)
	}
	if p.Revision() != rev {
		t.Errorf("Revision = %d, want %d", p.Revision(), rev)
	}

	// --max-file-size bounds each value and their sum.
	_, err = p.Sources(2)
	if !errors.Is(err, spec.ErrTooLarge) || !strings.Contains(err.Error(), base+"a.yaml: file is 3 bytes, over the 2 bytes limit") {
		t.Errorf("Sources(2) = %v", err)
	}
	_, err = p.Sources(4)
	if !errors.Is(err, spec.ErrTooLarge) || !strings.Contains(err.Error(), base+"c: the set is 6 bytes up to this file") {
		t.Errorf("Sources(4) = %v", err)
	}

	// A response far over the limit is refused by the client, before
	// it is all in memory.
	big := strings.Repeat("x", 1<<20)
	for _, k := range []string{"big/a", "big/b", "big/c"} {
		s.Put(k, big)
	}
	_, err = open(t, s.URL("big/")).Sources(64 << 10)
	if !errors.Is(err, spec.ErrTooLarge) || !strings.Contains(err.Error(), "etcd://"+s.Addr+"/big/: the keys and values under the prefix are over 1179648 bytes") {
		t.Errorf("a response over the receive limit: %v", err)
	}

	// A prefix with nothing under it is a missing file.
	_, err = open(t, s.URL("none/")).Sources(1 << 20)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "etcd://"+s.Addr+"/none/: no key under the prefix") {
		t.Errorf("empty prefix: %v", err)
	}
}

// An invalid value is named etcd://HOST:PORT/KEY:line:column.
func TestInvalidValueNamed(t *testing.T) {
	s := etcdtest.Start(t)
	s.Put("t/a.yaml", "apiVersion: netreconcile/v1\nkind: Topology\npods:\n  - name: [\n")
	srcs, err := open(t, s.URL("t/")).Sources(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = spec.Load(srcs)
	if err == nil || !strings.HasPrefix(err.Error(), "etcd://"+s.Addr+"/t/a.yaml:") {
		t.Errorf("Load = %v, want an error at etcd://%s/t/a.yaml:LINE:COL", err, s.Addr)
	}
}

// Nothing listens: a clear error naming the endpoint, within Timeout.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	_, err = open(t, "etcd://"+addr+"/topo/").Sources(1 << 20)
	took := time.Since(start)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "etcd cannot be reached at "+addr) {
		t.Errorf("Sources with etcd down = %v", err)
	}
	if took > Timeout+2*time.Second {
		t.Errorf("Sources with etcd down took %v, over %v", took, Timeout)
	}
}

// watchEvents runs p.Watch and hands what it reports to a channel.
func watchEvents(t *testing.T, p *Prefix) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Watch(ctx, func(err error) { ch <- err })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ch
}

// next waits for a report that matches (nil: a change; non-nil: an
// outage), skipping others.
func next(t *testing.T, ch <-chan error, outage bool, what string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-ch:
			if (err != nil) == outage {
				return
			}
		case <-deadline:
			t.Fatalf("no report of %s in 30 s", what)
		}
	}
}

// quiet drains the reports and fails on a change reported within d.
func quiet(t *testing.T, ch <-chan error, d time.Duration, what string) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case err := <-ch:
			if err == nil {
				t.Fatalf("%s: a change was reported", what)
			}
		case <-deadline:
			return
		}
	}
}

func TestWatch(t *testing.T) { testWatch(t, etcdtest.Start(t), TLSFiles{}) }

// The watch and its outages work the same over TLS.
func TestWatchTLS(t *testing.T) {
	s := etcdtest.StartTLS(t)
	testWatch(t, s, clientFiles(s))
}

func testWatch(t *testing.T, s *etcdtest.Server, files TLSFiles) {
	s.Put("t/a.yaml", "a")
	p := openWith(t, files, s.URL("t/"))
	if _, err := p.Sources(1 << 20); err != nil {
		t.Fatal(err)
	}
	s.Put("t/b.yaml", "between the read and the watch")
	ch := watchEvents(t, p)
	next(t, ch, false, "a key put between the read and the watch")
	quiet(t, ch, 300*time.Millisecond, "after the first report")

	s.Put("other/x", "x")
	quiet(t, ch, 300*time.Millisecond, "a key outside the prefix")
	s.Put("t/a.yaml", "a2")
	next(t, ch, false, "a key changed")
	s.Delete("t/b.yaml")
	next(t, ch, false, "a key deleted")

	// An outage is reported, then the recovery, and changes made after
	// it are seen.
	s.Stop()
	next(t, ch, true, "etcd stopped")
	s.Restart()
	next(t, ch, false, "etcd back")
	s.Put("t/c.yaml", "c")
	next(t, ch, false, "a key added after the outage")
}

// A watch whose revision was compacted reports a change (read it all
// again) and goes on.
func TestWatchCompacted(t *testing.T) {
	s := etcdtest.Start(t)
	s.Put("t/a.yaml", "a")
	p := open(t, s.URL("t/"))
	if _, err := p.Sources(1 << 20); err != nil {
		t.Fatal(err)
	}
	s.Put("t/a.yaml", "a2")
	rev := s.Put("other/x", "x")
	s.Compact(rev) // the watch's start revision is gone
	ch := watchEvents(t, p)
	next(t, ch, false, "a compacted revision")
	s.Put("t/a.yaml", "a3")
	next(t, ch, false, "a change after the compaction")
}
