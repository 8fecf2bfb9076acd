package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
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
	_, ok, err := Ask(context.Background(), path, "/etc/topology.yaml")
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
	if _, ok, _ := Ask(context.Background(), path, "/etc/topology.yaml"); !ok {
		t.Fatal("Ask did not reach the socket")
	}
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
	}
}
