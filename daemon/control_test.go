package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Ask never follows a symbolic link planted at the control socket's path:
// the socket it points to gets no connection.
func TestAskRefusesASymlink(t *testing.T) {
	other := filepath.Join(t.TempDir(), "other.sock")
	ln, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	path := filepath.Join(t.TempDir(), "n1.sock")
	if err := os.Symlink(other, path); err != nil {
		t.Fatal(err)
	}
	_, ok, err := Ask(context.Background(), path, []string{"/etc/topology.yaml"})
	if ok || err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("Ask through a symlink: ok %v, %v", ok, err)
	}
	select {
	case <-accepted:
		t.Fatal("the link's target was connected to")
	case <-time.After(100 * time.Millisecond):
	}

	// The socket itself is reached.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := Ask(context.Background(), path, []string{"/etc/topology.yaml"}); !ok {
		t.Fatal("Ask did not reach the socket")
	}
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
	}
}

// vmHWM is the process's peak resident set, in kB.
func vmHWM(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// A 300 MiB request is refused after MaxControlRequest bytes with an
// error, and the connection closed, without the daemon's memory growing;
// a request that never comes is dropped after controlIOTimeout.
func TestControlRequestIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n1.sock")
	ln, err := listenControl(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := newControl([]string{"/etc/topology.yaml"}, &statusBoard{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.serve(ctx, ln)

	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before := vmHWM(t)
	sent := make(chan int64, 1)
	go func() {
		chunk := append([]byte(`{"file": "`), bytes.Repeat([]byte("a"), 1<<20)...)
		var n int64
		for n < 300<<20 {
			m, err := conn.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
			chunk = chunk[:1<<20]
			for i := range chunk {
				chunk[i] = 'a'
			}
		}
		sent <- n
	}()
	var rep ControlReply
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewDecoder(conn).Decode(&rep); err != nil || !strings.Contains(rep.Error, "request larger than 65536 bytes: refused") {
		t.Fatalf("reply %+v, %v", rep, err)
	}
	if n := <-sent; n >= 300<<20 {
		t.Fatalf("the daemon read all of the %d bytes", n)
	}
	if grown := vmHWM(t) - before; grown > 16<<10 {
		t.Fatalf("peak RSS grew by %d kB", grown)
	}

	// Silence is dropped: the daemon closes the connection.
	if testing.Short() {
		return
	}
	idle, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	_ = idle.SetReadDeadline(time.Now().Add(3 * controlIOTimeout))
	_, err = idle.Read(make([]byte, 1))
	if took := time.Since(start); err == nil || took > 2*controlIOTimeout || took < controlIOTimeout-time.Second {
		t.Fatalf("idle connection: %v after %v", err, took)
	}
}

// A status request is answered at once from the last pass's record, and
// answers "starting" before any pass.
func TestAskStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n1.sock")
	ln, err := listenControl(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	board := &statusBoard{}
	c := newControl([]string{"/etc/topology.yaml"}, board)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.serve(ctx, ln)

	st, ok, err := AskStatus(ctx, path)
	if !ok || err != nil || st.State != "starting" || st.PID != os.Getpid() || st.File != "/etc/topology.yaml" {
		t.Fatalf("before a pass: %+v, %v, %v", st, ok, err)
	}
	board.p.Store(&Status{Node: "n1", State: "converged", Pods: 3, Objects: 40, DriftRepairs: 2, FileState: "ok"})
	st, ok, err = AskStatus(ctx, path)
	if !ok || err != nil || st.State != "converged" || st.Objects != 40 || st.DriftRepairs != 2 || st.Node != "n1" {
		t.Fatalf("after a pass: %+v, %v, %v", st, ok, err)
	}
	if _, ok, err := AskStatus(ctx, filepath.Join(t.TempDir(), "none.sock")); ok || err != nil {
		t.Fatalf("no daemon: ok %v, %v", ok, err)
	}
}

// apply's -f is compared with the daemon's: paths by the file they name,
// a store's prefix by its URL.
func TestSameFilesWithStores(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	url := "etcd://127.0.0.1:2379/topo/"
	if err := sameFiles([]string{dir + "/./a.yaml", url}, []string{file, url}); err != nil {
		t.Errorf("the same set: %v", err)
	}
	err := sameFiles([]string{file, "etcd://127.0.0.1:2379/other/"}, []string{file, url})
	if err == nil || !strings.Contains(err.Error(), "follows "+file+", "+url+", not") {
		t.Errorf("another prefix: %v", err)
	}
}
