package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

// cachedFiles are valid topologies of every shape: the examples, the
// good test files and the scale file.
func cachedFiles(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("../examples/*.yaml")
	good, _ := filepath.Glob("testdata/good/*.yaml")
	scale := filepath.Join(t.TempDir(), "scale.yaml")
	if err := os.WriteFile(scale, scaletopo.File(), 0o644); err != nil {
		t.Fatal(err)
	}
	files = append(append(files, good...), scale)
	if len(files) < 5 {
		t.Fatalf("too few files: %v", files)
	}
	return files
}

func TestParseCacheGivesTheSameModel(t *testing.T) {
	stored := 0
	for _, file := range cachedFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, err := Load(file)
			if err != nil {
				t.Skipf("not a valid topology: %v", err)
			}
			c := ParseCache{Path: filepath.Join(t.TempDir(), "parsed"), Store: true}
			r, hit, commit, err := c.Load(file)
			if err == nil {
				err = commit()
			}
			if exact(reflect.ValueOf(want).Elem()) != nil {
				if err == nil {
					t.Fatal("a model gob cannot carry was stored")
				}
				return
			}
			if err != nil || hit || !reflect.DeepEqual(r, want) {
				t.Fatalf("first load: hit %v, err %v, equal %v", hit, err, reflect.DeepEqual(r, want))
			}
			stored++
			c.Store = false
			r, hit, _, err = c.Load(file)
			if err != nil || !hit {
				t.Fatalf("second load: hit %v, err %v", hit, err)
			}
			if !reflect.DeepEqual(r, want) {
				t.Fatalf("from the cache:\n%+v\nparsed:\n%+v", r, want)
			}
		})
	}
	if stored < 5 {
		t.Fatalf("only %d files went through the cache", stored)
	}
}

func TestParseCacheMisses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "topo.yaml")
	data, err := os.ReadFile("../examples/veth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := ParseCache{Path: filepath.Join(dir, "state", "parsed"), Store: true}
	load := func() (*Resolved, bool) {
		t.Helper()
		r, hit, commit, err := c.Load(file)
		if err == nil {
			err = commit()
		}
		if err != nil {
			t.Fatal(err)
		}
		return r, hit
	}
	if _, hit := load(); hit {
		t.Fatal("hit on an empty cache")
	}
	if _, hit := load(); !hit {
		t.Fatal("miss on the file just stored")
	}

	// Other bytes: a miss, and their model.
	changed := strings.Replace(string(data), "10.", "10.", 1) + "\n# edited\n"
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, hit := load(); hit {
		t.Fatal("hit after the file changed")
	}

	// A damaged cache: a miss, never an error or a wrong model.
	want, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-3] ^= 0xff
	if err := os.WriteFile(c.Path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Store = false
	r, hit := load()
	if hit || !reflect.DeepEqual(r, want) {
		t.Fatalf("damaged cache: hit %v, model equal %v", hit, reflect.DeepEqual(r, want))
	}
	if err := os.WriteFile(c.Path, raw[:cacheHeader-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, hit := load(); hit {
		t.Fatal("hit on a truncated cache")
	}

	// Without Store, or without commit, nothing is written.
	c.Path = filepath.Join(dir, "other")
	load()
	c.Store = true
	if _, _, _, err := c.Load(file); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Path); !os.IsNotExist(err) {
		t.Fatalf("a load without Store or commit wrote the cache: %v", err)
	}
	c.Store = false

	// A bad file is an error through the cache too, with its position.
	if err := os.WriteFile(file, []byte("apiVersion: netreconcile/v1\nkind: Topology\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Store = true
	if _, _, _, err := c.Load(file); err == nil || !strings.Contains(err.Error(), "topo.yaml:3") {
		t.Fatalf("bad file: %v", err)
	}
}

func TestExact(t *testing.T) {
	type inner struct{ N int }
	type withUnexported struct {
		A int
		b int
	}
	n := 0
	for _, c := range []struct {
		v  any
		ok bool
	}{
		{ResolvedPod{Labels: map[string]string{"a": "b"}, Ports: []ContainerPort{{Port: 1}}}, true},
		{ResolvedPod{}, true}, // nil slices and maps
		{ResolvedPod{Labels: map[string]string{}}, false},
		{ResolvedPod{Ports: []ContainerPort{}}, false},
		{struct{ P *inner }{&inner{}}, true}, // gob keeps a pointer to a zero struct
		{struct{ P *int }{&n}, false},
		{struct{ P []map[string]string }{[]map[string]string{{}}}, false},
		{withUnexported{A: 1}, false},
		{struct{ I any }{1}, false},
	} {
		err := exact(reflect.ValueOf(c.v))
		if (err == nil) != c.ok {
			t.Errorf("exact(%#v) = %v, want ok %v", c.v, err, c.ok)
		}
	}
}
