package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/daemon"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestStatusGolden keeps the status table: a node its daemon reports
// converged with drift repairs, one planned live with changes pending,
// one whose daemon's last pass failed while serving an older file.
func TestStatusGolden(t *testing.T) {
	pass := time.Date(2026, 12, 7, 1, 2, 3, 0, time.Local)
	nodes := []nodeStatus{
		{Node: "node-a", Source: "watch", State: "converged", Pods: 12, Objects: 97,
			Daemon: &daemon.Status{PID: 4242, State: "converged", LastPass: pass, LastDuration: "41ms", DriftRepairs: 2, FileState: "ok"}},
		{Node: "node-b", Source: "live", State: "drifted", Pending: 3, Pods: 8, Objects: 60},
		{Node: "node-c", Source: "watch", State: "error", Pods: 5, Objects: 40,
			Daemon: &daemon.Status{PID: 77, State: "error", LastPass: pass, LastDuration: "2s", LastError: "node \"node-c\": uplink \"eth0\" not found",
				FileState: "invalid"}},
	}
	var b bytes.Buffer
	if err := writeStatus(&b, "text", nodes); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "status.txt"), b.Bytes())
}

// golden compares got with the file at path (go test -update rewrites it).
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s: missing (go test -update writes it)", path)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update):\n%s", path, got)
	}
}
