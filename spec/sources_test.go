package spec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// The set's files: a header with the cluster and nodes, then pods and
// services of two teams.
const (
	setHead = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}
nodes:
  - {name: n1, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
  - {name: n2, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}
`
	setTeamA = `apiVersion: netreconcile/v1
kind: Topology
pods:
  - {name: a1, namespace: a, node: n1, labels: {app: a}}
  - {name: a2, namespace: a, node: n2, labels: {app: a}}
services:
  - {name: web, namespace: a, clusterIP: 10.96.0.10, selector: {app: a}, ports: [{port: 80}]}
`
	setTeamB = `apiVersion: netreconcile/v1
kind: Topology
namespaces:
  - {name: b, labels: {team: b}}
pods:
  - {name: b1, namespace: b, node: n2}
`
)

// writeFiles writes name → text files into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSetMergesLikeOneFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"00-head.yaml": setHead, "10-a.yml": setTeamA, "20-b.yaml": setTeamB})
	got, err := LoadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	one := setHead + "pods:\n" + strings.SplitN(setTeamA, "pods:\n", 2)[1]
	one = strings.Replace(one, "services:", "  - {name: b1, namespace: b, node: n2}\nservices:", 1)
	one += "namespaces:\n  - {name: b, labels: {team: b}}\n"
	want, err := LoadBytes("one.yaml", []byte(one))
	if err != nil {
		t.Fatal(err)
	}
	keys := func(r *Resolved) (out []string) {
		for _, p := range r.Pods {
			out = append(out, p.Key+"="+p.IP.String())
		}
		for _, s := range r.Services {
			out = append(out, s.Key)
		}
		return out
	}
	if !slices.Equal(keys(got), keys(want)) || got.Namespaces["b"]["team"] != "b" || len(got.Nodes) != 2 {
		t.Errorf("merged %v (namespaces %v), one file %v", keys(got), got.Namespaces, keys(want))
	}
}

func TestSetErrorsKeepTheirFiles(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(setTeamB, "node: n2", "node: n9", 1)
	writeFiles(t, dir, map[string]string{"00-head.yaml": setHead, "10-a.yaml": setTeamA, "20-b.yaml": bad})
	_, err := LoadFiles(dir)
	want := filepath.Join(dir, "20-b.yaml") + `:6:36: pods[0].node: unknown node "n9" (nodes: n1, n2)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestSetDuplicateNamesBothPlaces(t *testing.T) {
	dir := t.TempDir()
	dup := setTeamB + "  - {name: a2, namespace: a, node: n1}\n"
	writeFiles(t, dir, map[string]string{"00-head.yaml": setHead, "10-a.yaml": setTeamA, "20-b.yaml": dup})
	_, err := LoadFiles(dir)
	a, b := filepath.Join(dir, "10-a.yaml"), filepath.Join(dir, "20-b.yaml")
	want := b + `:7:12: pods[1].name: duplicate pod "a/a2" (first at pods[1] in ` + a + `:5)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// The same with a node, a service's clusterIP and the cluster.
	more := setTeamB + "services:\n  - {name: api, namespace: b, clusterIP: 10.96.0.10, ports: [{port: 80}]}\n" +
		"cluster: {podCIDR: 10.244.0.0/16}\n"
	writeFiles(t, dir, map[string]string{"20-b.yaml": more})
	_, err = LoadFiles(dir)
	for _, want := range []string{
		b + `:8:42: services[0].clusterIP: clusterIP 10.96.0.10 is already used by services[0] in ` + a + `:7 (service "web")`,
		b + `:9:10: cluster: cluster is already given in ` + filepath.Join(dir, "00-head.yaml") + `:3; give it in one file of the set`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant a line %s", err, want)
		}
	}
}

func TestSetHeaderInEveryFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"00-head.yaml": setHead, "10-a.yaml": "pods: []\n", "20-b.yaml": strings.Replace(setTeamB, "kind: Topology", "kind: ConfigMap", 1)})
	_, err := LoadFiles(dir)
	a, b := filepath.Join(dir, "10-a.yaml"), filepath.Join(dir, "20-b.yaml")
	want := a + `:1:1: apiVersion: required; must be "netreconcile/v1"` + "\n" +
		a + `:1:1: kind: required; must be "Topology"` + "\n" +
		b + `:2:7: kind: unsupported kind "ConfigMap"; must be "Topology"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestSetDirectoryOrderAndSkips(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"b.yaml": "", "a.yml": "", "c.YAML": "", ".hidden.yaml": "", "notes.txt": "", "z.json": "",
	})
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Files{dir, "-"}.Paths()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.yml"), filepath.Join(dir, "b.yaml"), "-"}
	if !slices.Equal(got, want) {
		t.Errorf("paths %v, want %v", got, want)
	}
	if _, err := (Files{dir, filepath.Join(dir, "b.yaml")}).Paths(); err == nil || !strings.Contains(err.Error(), "in the set twice") {
		t.Errorf("a file given twice: %v", err)
	}
	empty := t.TempDir()
	if _, err := (Files{empty}).Paths(); err == nil || !strings.Contains(err.Error(), "has no *.yaml or *.yml file") {
		t.Errorf("empty directory: %v", err)
	}
}

// A projected ConfigMap volume as kubelet lays it out: the data in a
// hidden timestamped directory, ..data a link to it, each key a link
// through ..data. Swapping ..data changes every file at once.
func TestSetKubernetesConfigMapLayout(t *testing.T) {
	dir := t.TempDir()
	mkVersion := func(name string, files map[string]string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for f, text := range files {
			if err := os.WriteFile(filepath.Join(dir, name, f), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mkVersion("..2026_01_01_00_00_00.1", map[string]string{"head.yaml": setHead, "team-a.yaml": setTeamA})
	mustLink := func(target, link string) {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	mustLink("..2026_01_01_00_00_00.1", "..data")
	mustLink("..data/head.yaml", "head.yaml")
	mustLink("..data/team-a.yaml", "team-a.yaml")
	srcs := sourcesOf(t, dir)
	if len(srcs) != 2 || srcs[0].Name != filepath.Join(dir, "head.yaml") || srcs[1].Name != filepath.Join(dir, "team-a.yaml") {
		t.Fatalf("sources %v", srcs)
	}
	r, _, err := Load(srcs)
	if err != nil || len(r.Pods) != 2 {
		t.Fatalf("load: %v", err)
	}
	// kubelet's swap: a new version, a new ..data link renamed over the
	// old one.
	mkVersion("..2026_01_01_00_01_00.2", map[string]string{"head.yaml": setHead, "team-a.yaml": setTeamA + "namespaces:\n  - {name: a, labels: {team: a}}\n"})
	mustLink("..2026_01_01_00_01_00.2", "..data_tmp")
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	r, _, err = Load(sourcesOf(t, dir))
	if err != nil || r.Namespaces["a"]["team"] != "a" {
		t.Fatalf("after the swap: %v", err)
	}
}

func TestSetSizeLimits(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"00-head.yaml": setHead, "10-a.yaml": setTeamA})
	head := filepath.Join(dir, "00-head.yaml")
	big := int64(len(setHead))
	if _, err := ReadFiles(big, head); err != nil {
		t.Errorf("a file of exactly the limit: %v", err)
	}
	_, err := ReadFiles(big-1, head)
	want := head + ": file is " + size(big) + ", over the " + size(big-1) + " limit (--max-file-size)"
	if !errors.Is(err, ErrTooLarge) || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// Each file fits, the set does not.
	_, err = ReadFiles(int64(max(len(setHead), len(setTeamA))), dir)
	if !errors.Is(err, ErrTooLarge) || !strings.HasPrefix(err.Error(), filepath.Join(dir, "10-a.yaml")+": the set is ") ||
		!strings.HasSuffix(err.Error(), "limit of the whole set (--max-file-size)") {
		t.Errorf("set over the limit: %v", err)
	}
	if got := size(70 << 20); got != "70 MiB" {
		t.Errorf("size: %s", got)
	}
	if got := size(70<<20 + 1); got != "70.0 MiB (73400321 bytes)" {
		t.Errorf("size: %s", got)
	}
}

// The Parser keeps each file's items: editing one file of the set
// decodes that file's changed items alone, and the result is the same as
// a fresh load.
func TestSetParserPerFile(t *testing.T) {
	srcs := []Source{{"head.yaml", []byte(setHead)}, {"a.yaml", []byte(setTeamA)}, {"b.yaml", []byte(setTeamB)}}
	var p Parser
	if _, _, err := p.Load(srcs); err != nil {
		t.Fatal(err)
	}
	if len(p.files) != 3 || p.files["a.yaml"].last == nil || len(p.files["a.yaml"].last.t.Pods) != 2 {
		t.Fatalf("items kept: %d files", len(p.files))
	}
	kept := p.files["a.yaml"].last.t
	srcs[2].Data = []byte(strings.Replace(setTeamB, "node: n2", "node: n1", 1))
	r, _, err := p.Load(srcs[1:])
	if err == nil || !strings.Contains(err.Error(), "at least one node is required") {
		t.Fatalf("without the head: %v", err)
	}
	r, _, err = p.Load(srcs)
	if err != nil {
		t.Fatal(err)
	}
	if p.files["a.yaml"].last.t != kept {
		t.Error("the unchanged file decoded again")
	}
	want, _, _ := Load(srcs)
	if pod := r.Pods[slices.IndexFunc(r.Pods, func(p ResolvedPod) bool { return p.Key == "b/b1" })]; pod.Node != "n1" ||
		len(want.Pods) != len(r.Pods) {
		t.Errorf("b/b1 on %s", pod.Node)
	}
}

// The parse cache is keyed by the whole set: the same set is the cached
// model, a set with one file edited reuses the other files' items, and a
// renamed file is not the same set.
func TestSetParseCache(t *testing.T) {
	dir := t.TempDir()
	c := ParseCache{Path: filepath.Join(dir, "parsed"), Store: true}
	srcs := []Source{{"head.yaml", []byte(setHead)}, {"a.yaml", []byte(setTeamA)}, {"b.yaml", []byte(setTeamB)}}
	loadSet := func(srcs []Source) (*Resolved, Cached) {
		t.Helper()
		r, found, commit, err := c.Load(srcs)
		if err != nil {
			t.Fatal(err)
		}
		if err := commit(); err != nil {
			t.Fatal(err)
		}
		return r, found
	}
	if _, found := loadSet(srcs); found != CachedNothing {
		t.Errorf("first load: %s", found)
	}
	r, found := loadSet(srcs)
	if found != CachedModel || len(r.Pods) != 3 {
		t.Errorf("same set: %s, %d pods", found, len(r.Pods))
	}
	srcs[2].Data = []byte(strings.Replace(setTeamB, "node: n2", "node: n1", 1))
	if _, found := loadSet(srcs); found != CachedItems {
		t.Errorf("one file edited: %s", found)
	}
	srcs[2].Name = "c.yaml"
	if _, found := loadSet(srcs); found != CachedItems {
		t.Errorf("a file renamed: %s", found)
	}
	// A duplicate across files found through the cached items still
	// names both places.
	srcs[2].Data = []byte(setTeamB + "  - {name: a1, namespace: a, node: n1}\n")
	_, _, _, err := c.Load(srcs)
	if err == nil || !strings.Contains(err.Error(), `c.yaml:7:12: pods[1].name: duplicate pod "a/a1" (first at pods[0] in a.yaml:4)`) {
		t.Errorf("duplicate through the cache: %v", err)
	}
}

// memStore is a Provider of fixed sources, a store's stand-in.
type memStore struct {
	name string
	srcs []Source
}

func (m memStore) String() string                      { return m.name }
func (m memStore) Sources(max int64) ([]Source, error) { return m.srcs, nil }

func TestOpenSetMixesFilesAndStores(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"head.yaml": setHead, "b.yaml": setTeamB})
	a := Source{Name: "mem://s/a", Data: []byte(setTeamA)}
	openers := map[string]Opener{"mem": func(arg string) (Provider, error) { return memStore{arg, []Source{a}}, nil }}
	head, b := filepath.Join(dir, "head.yaml"), filepath.Join(dir, "b.yaml")
	set, err := OpenSet([]string{head, "mem://s/", b}, openers)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 3 || len(set.Watchers()) != 0 || !slices.Equal(set.Paths(), Files{head, b}) {
		t.Fatalf("OpenSet = %v (%d parts), paths %v", set, len(set), set.Paths())
	}
	srcs, err := set.Sources(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, s.Name)
	}
	if want := []string{head, "mem://s/a", b}; !slices.Equal(names, want) {
		t.Errorf("sources %v, want %v (the -f order)", names, want)
	}
	if r, _, err := Load(srcs); err != nil || len(r.Pods) != 3 {
		t.Errorf("Load of the mixed set: %v", err)
	}

	// The set's bound covers every part; a source named twice is refused.
	if _, err := set.Sources(int64(len(setHead) + len(setTeamA))); !errors.Is(err, ErrTooLarge) || !strings.HasPrefix(err.Error(), b+": the set is") {
		t.Errorf("set over the limit: %v", err)
	}
	set, _ = OpenSet([]string{head, "mem://s/", dir + "/./head.yaml"}, openers)
	if _, err := set.Sources(1 << 20); err == nil || !strings.Contains(err.Error(), "is in the set twice") {
		t.Errorf("a file twice across parts: %v", err)
	}
	if _, err := OpenSet([]string{"ftp://x/y"}, openers); err == nil || !strings.Contains(err.Error(), "unknown source ftp://") {
		t.Errorf("unknown scheme: %v", err)
	}
}

func TestURLScheme(t *testing.T) {
	for arg, want := range map[string]string{"etcd://h:1/p": "etcd", "a+b.c-d://x": "a+b.c-d", "dir/x://y": "", "://x": "", "-": "", "a.yaml": ""} {
		if got, ok := URLScheme(arg); got != want || ok != (want != "") {
			t.Errorf("URLScheme(%q) = %q, %v; want %q", arg, got, ok, want)
		}
	}
}

// TestReadAll: reading into a buffer sized for the file gives the whole
// input, whether it is the size given, shorter (truncated since the
// stat) or longer (grown since, or a pipe of unknown size).
func TestReadAll(t *testing.T) {
	for _, c := range []struct{ n, size int64 }{{0, 0}, {10, 10}, {10, 4}, {4, 10}, {5000, 0}, {5000, 4999}} {
		want := bytes.Repeat([]byte("x"), int(c.n))
		got, err := readAll(iotest.HalfReader(bytes.NewReader(want)), c.size)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%d bytes read for a size of %d: got %d bytes, %v", c.n, c.size, len(got), err)
		}
	}
}
