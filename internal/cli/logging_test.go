package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestQuietLogger: without -v a command logs warnings, errors and the
// datapath's notes, and nothing per change; with -v it logs every change.
func TestQuietLogger(t *testing.T) {
	var b bytes.Buffer
	l, p, err := newLogger("", 0, true, &b)
	if err != nil {
		t.Fatal(err)
	}
	if p != nil {
		t.Error("a progress line on a writer that is not a terminal")
	}
	l.Info("applied", "kind", "route")
	l.V(1).Info("planned")
	l.Info("warning: ignored the record of namespace x")
	l.Info("datapath", "note", "maps replaced")
	l.Error(errors.New("boom"), "failed")
	got := b.String()
	for _, want := range []string{"warning: ignored", "maps replaced", "boom"} {
		if !strings.Contains(got, want) {
			t.Errorf("quiet log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, `"applied"`) || strings.Contains(got, "planned") {
		t.Errorf("quiet log has per-change lines:\n%s", got)
	}

	b.Reset()
	l, _, _ = newLogger("json", 1, false, &b)
	l.Info("applied", "kind", "route")
	l.V(1).Info("planned")
	if got := b.String(); !strings.Contains(got, `"msg":"applied"`) || !strings.Contains(got, `"msg":"planned"`) {
		t.Errorf("-v log lacks the changes:\n%s", got)
	}
}

// TestProgress: the progress line counts changes and is erased before
// anything else is written.
func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b}
	p.step()
	if !strings.Contains(b.String(), "applying: 1 changes") {
		t.Fatalf("progress line %q", b.String())
	}
	out := clearing{w: &b, p: p}
	b.Reset()
	out.Write([]byte("summary\n"))
	if b.String() != "\r\033[Ksummary\n" {
		t.Errorf("output after a progress line: %q", b.String())
	}
	b.Reset()
	out.Write([]byte("more\n"))
	if b.String() != "more\n" {
		t.Errorf("erased twice: %q", b.String())
	}
}
