package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// TestParseCache: apply leaves the file's model and items in the state
// directory; a plan of the same bytes reads the model and finds nothing to
// do, a plan of an edited file reuses the unchanged items and sees the
// edit, and a damaged cache is only a miss.
func TestParseCache(t *testing.T) {
	w := newWorld(t)
	pods := []podDef{{"a", "10.244.1.10", "veth", w.id + "-a"}}
	w.write(pods)
	t.Cleanup(func() {
		w.labDown(w.file)
		for _, p := range append(pods, podDef{netns: w.id + "-b"}) {
			_ = exec.Command("ip", "netns", "del", p.netns).Run()
		}
	})
	w.mustRun("lab", "up", "-f", w.file, "--state-dir", w.stateDir)
	w.mustRun(w.nodeArgs("apply")...)
	cache := filepath.Join(w.stateDir, "parsed.cache")

	// plan -v logs what it found in the cache: the model of the same
	// bytes, the items of an edited file, or nothing.
	plan := func(want, cached string) {
		t.Helper()
		out, errOut, code := Run(t, w.bin, w.nodeArgs("plan", "-v", "--log-format", "json")...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("plan: exit %d, want %q:\n%s\n%s", code, want, out, errOut)
		}
		if !strings.Contains(errOut, `"cached":"`+cached+`"`) {
			t.Fatalf("plan did not find %q in the cache:\n%s", cached, errOut)
		}
	}
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("apply left no parse cache: %v", err)
	}
	plan("No changes.", "model")

	pods = append(pods, podDef{"b", "10.244.1.11", "veth", w.id + "-b"})
	w.write(pods)
	plan("Plan: ", "items")
	plan("Plan: ", "items") // plan does not write the cache
	w.mustRun(w.nodeArgs("apply")...)
	plan("No changes.", "model")
	nstest.StartEchoTCP(t, pods[0].netns, "10.244.1.10:7000", "a")
	if got := nstest.CheckTCP(t, pods[1].netns, "10.244.1.10:7000"); got != "a" {
		t.Fatalf("the added pod b reached a: answered by %q", got)
	}

	raw, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(cache, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	plan("No changes.", "nothing")
}
