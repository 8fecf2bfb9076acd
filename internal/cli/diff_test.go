package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDiffExitCodes runs diff as main() does: 0 for no change (and for a
// change without --detailed-exitcode), 2 for a change with it, 1 for an
// unreadable file or output format.
func TestDiffExitCodes(t *testing.T) {
	serving := strings.Replace(topoOnePod, "ip: 10.244.1.11}", "ip: 10.244.1.11, ports: [{port: 80}]}", 1)
	old := writeFile(t, "old.yaml", serving)
	isolated := serving + `policies:
  - {name: deny, namespace: t, spec: {podSelector: {}}}
`
	new := writeFile(t, "new.yaml", isolated)

	out, code, msg := run(t, "diff", "--detailed-exitcode", old, old)
	if code != 0 || !strings.Contains(out, "No changes.") {
		t.Errorf("same file: exit %d (%s), output %q; want 0 and No changes.", code, msg, out)
	}
	if _, code, msg = run(t, "diff", old, new); code != 0 {
		t.Errorf("differing files without --detailed-exitcode: exit %d (%s), want 0", code, msg)
	}
	out, code, _ = run(t, "diff", "--detailed-exitcode", "-o", "json", old, new)
	if code != 2 {
		t.Errorf("differing files with --detailed-exitcode: exit %d, want 2", code)
	}
	var doc struct {
		FormatVersion string `json:"format_version"`
		Reachability  []struct {
			From, To, Protocol, Before, After string
			Port                              int
		} `json:"reachability"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("diff -o json: %v\n%s", err, out)
	}
	if doc.FormatVersion == "" || len(doc.Reachability) != 1 || doc.Reachability[0].From != "t/a" ||
		doc.Reachability[0].To != "t/b" || doc.Reachability[0].Port != 80 || doc.Reachability[0].After != "denied" {
		t.Errorf("diff -o json: want format_version and t/a -> t/b 80 allowed -> denied, got %+v", doc)
	}
	if _, code, msg = run(t, "diff", "-o", "yml", old, new); code != 1 || !strings.Contains(msg, "markdown") {
		t.Errorf("-o yml: exit %d (%s), want 1 naming the formats", code, msg)
	}
	if out, code, msg := run(t, "diff", "-o", "yaml", old, new); code != 0 || !strings.Contains(out, "reachability:\n") {
		t.Errorf("-o yaml: exit %d (%s):\n%s", code, msg, out)
	}
	if _, code, msg = run(t, "diff", old, old+".missing"); code != 1 || !strings.Contains(msg, "read NEW") {
		t.Errorf("missing NEW: exit %d (%s), want 1 naming NEW", code, msg)
	}
}

// TestDiffFlags: diff takes -o (text by default) and --detailed-exitcode,
// and no -f: its two files are arguments.
func TestDiffFlags(t *testing.T) {
	cmd, _, err := NewRoot("test").Find([]string{"diff"})
	if err != nil {
		t.Fatal(err)
	}
	fs := cmd.LocalNonPersistentFlags()
	if o := fs.Lookup("output"); o == nil || o.Shorthand != "o" || o.DefValue != "text" {
		t.Errorf("diff -o: %+v, want -o defaulting to text", o)
	}
	if d := fs.Lookup("detailed-exitcode"); d == nil || d.DefValue != "false" {
		t.Errorf("diff --detailed-exitcode: %+v", d)
	}
	if fs.Lookup("file") != nil {
		t.Error("diff has -f; its files are OLD and NEW")
	}
	if _, code, msg := run(t, "diff", "only-one.yaml"); code != 1 || !strings.Contains(msg, "2 arg") {
		t.Errorf("diff with one file: exit %d %q, want 1 asking for two", code, msg)
	}
}
