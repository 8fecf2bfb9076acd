package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
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

// load is c.Load, committed.
func load(t *testing.T, c ParseCache, file string) (*Resolved, Cached) {
	t.Helper()
	r, found, commit, err := c.Load(sourcesOf(t, file))
	if err == nil {
		err = commit()
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, found
}

// Every file comes back equal from the cache: whole, and item by item
// after an edit that leaves every item as it was.
func TestParseCacheGivesTheSameModel(t *testing.T) {
	stored, reused := 0, 0
	for _, file := range cachedFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, err := LoadFiles(file)
			if err != nil {
				t.Skipf("not a valid topology: %v", err)
			}
			c := ParseCache{Path: filepath.Join(t.TempDir(), "parsed"), Store: true}
			r, found, commit, err := c.Load(sourcesOf(t, file))
			if err == nil {
				err = commit()
			}
			if exact(reflect.ValueOf(want).Elem()) != nil {
				if err == nil {
					t.Fatal("a model gob cannot carry was stored")
				}
				return
			}
			if err != nil || found != CachedNothing || !reflect.DeepEqual(r, want) {
				t.Fatalf("first load: found %s, err %v, equal %v", found, err, reflect.DeepEqual(r, want))
			}
			stored++
			c.Store = false
			if r, found = load(t, c, file); found != CachedModel || !reflect.DeepEqual(r, want) {
				t.Fatalf("second load: found %s, equal %v\n%+v\nparsed:\n%+v", found, reflect.DeepEqual(r, want), r, want)
			}

			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			edited := filepath.Join(t.TempDir(), filepath.Base(file))
			if err := os.WriteFile(edited, append(data, "\n# edited\n"...), 0o644); err != nil {
				t.Fatal(err)
			}
			want, err = LoadFiles(edited)
			if err != nil {
				t.Fatal(err)
			}
			r, found = load(t, c, edited)
			// Files in block style are decoded item by item; the others
			// (anchors, say) as one document, with nothing to reuse.
			split := found == CachedItems || (found == CachedNothing && filepath.Base(file) != "scale.yaml")
			if !split || !reflect.DeepEqual(r, want) {
				t.Fatalf("edited: found %s, equal %v\n%+v\nparsed:\n%+v", found, reflect.DeepEqual(r, want), r, want)
			}
			if found == CachedItems {
				reused++
			}
		})
	}
	if stored < 5 || reused < 5 {
		t.Fatalf("only %d files went through the cache, %d item by item", stored, reused)
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
	if _, found := load(t, c, file); found != CachedNothing {
		t.Fatalf("found %s in an empty cache", found)
	}
	if _, found := load(t, c, file); found != CachedModel {
		t.Fatalf("found %s for the file just stored", found)
	}

	// An item edited: the others are reused, the edit is seen.
	changed := strings.Replace(string(data), "ip: 10.244.1.10", "ip: 10.244.1.12", 1)
	if changed == string(data) {
		t.Fatal("no pod address to edit in examples/veth.yaml")
	}
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := LoadFiles(file)
	if err != nil {
		t.Fatal(err)
	}
	if r, found := load(t, c, file); found != CachedItems || !reflect.DeepEqual(r, want) {
		t.Fatalf("after an edit: found %s, model equal %v", found, reflect.DeepEqual(r, want))
	}

	// A damaged cache: a miss, never an error or a wrong model.
	raw, err := os.ReadFile(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{cacheHeader + 3, len(raw) - 3} { // in the model, in the items
		bad := append([]byte(nil), raw...)
		bad[at] ^= 0xff
		if err := os.WriteFile(c.Path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		c.Store = false
		if r, found := load(t, c, file); found != CachedNothing || !reflect.DeepEqual(r, want) {
			t.Fatalf("damaged at %d: found %s, model equal %v", at, found, reflect.DeepEqual(r, want))
		}
	}
	if err := os.WriteFile(c.Path, raw[:cacheHeader-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, found := load(t, c, file); found != CachedNothing {
		t.Fatalf("found %s in a truncated cache", found)
	}

	// Without Store, or without commit, nothing is written.
	c.Path = filepath.Join(dir, "other")
	load(t, c, file)
	c.Store = true
	if _, _, _, err := c.Load(sourcesOf(t, file)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Path); !os.IsNotExist(err) {
		t.Fatalf("a load without Store or commit wrote the cache: %v", err)
	}

	// A bad file is an error through the cache too, with its position.
	if err := os.WriteFile(file, []byte("apiVersion: netreconcile/v1\nkind: Topology\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.Load(sourcesOf(t, file)); err == nil || !strings.Contains(err.Error(), "topo.yaml:3") {
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

// A symbolic link planted at the cache path is neither read nor written
// through: the load is a miss, and storing replaces the link itself.
func TestParseCacheRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "topo.yaml")
	data, err := os.ReadFile("../examples/veth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A good cache of this very file, elsewhere: followed, it would hit.
	elsewhere := filepath.Join(t.TempDir(), "parsed")
	load(t, ParseCache{Path: elsewhere, Store: true}, file)
	before, err := os.ReadFile(elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	c := ParseCache{Path: filepath.Join(dir, "parsed"), Store: true}
	if err := os.Symlink(elsewhere, c.Path); err != nil {
		t.Fatal(err)
	}
	if _, found := load(t, c, file); found != CachedNothing {
		t.Fatalf("found %s through a symlink", found)
	}
	if st, err := os.Lstat(c.Path); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("the cache did not replace the link: %v %v", st.Mode(), err)
	}
	if after, err := os.ReadFile(elsewhere); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the link's target changed (%v)", err)
	}
}

// tamper rewrites the model in the cache at path with edit, sealed with
// key (nil: the MAC is left as it was).
func tamper(t *testing.T, path string, key []byte, edit func(*Topology)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys cacheKeys
	at := len(cacheMagic)
	copy(keys.bin[:], raw[at:])
	copy(keys.file[:], raw[at+sha256.Size:])
	n := binary.LittleEndian.Uint64(raw[cacheHeader-8 : cacheHeader])
	var m cachedModel
	if err := gob.NewDecoder(bytes.NewReader(raw[cacheHeader : cacheHeader+int(n)])).Decode(&m); err != nil {
		t.Fatal(err)
	}
	edit(m.Parts[0].Topology)
	out, err := encodeCache(keys, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		seal(key, out)
	} else {
		copy(out[at+2*sha256.Size:], raw[at+2*sha256.Size:at+3*sha256.Size])
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The cache is trusted no more than the file: one edited without the
// host's key, one sealed with another host's key, and one sealed with
// this host's key but naming what validation refuses are all misses, and
// the model is the file's.
func TestParseCacheIsAuthenticatedAndValidated(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "topo.yaml")
	data, err := os.ReadFile("../examples/veth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := LoadFiles(file)
	if err != nil {
		t.Fatal(err)
	}
	var misses []string
	c := ParseCache{Path: filepath.Join(dir, "parsed"), Store: true, Miss: func(r string) { misses = append(misses, r) }}
	load(t, c, file)
	keyPath := filepath.Join(dir, KeyFile)
	key, err := os.ReadFile(keyPath)
	if st, serr := os.Lstat(keyPath); err != nil || serr != nil || len(key) != 32 || st.Mode().Perm() != 0o600 {
		t.Fatalf("key: %d bytes, %v, %v", len(key), err, serr)
	}
	c.Store = false
	if r, found := load(t, c, file); found != CachedModel || !reflect.DeepEqual(r, want) {
		t.Fatalf("untouched: found %s", found)
	}
	saved, err := os.ReadFile(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{7}, 32)
	cases := []struct {
		name string
		key  []byte
		edit func(*Topology)
		miss string
	}{
		{"netns under /proc, no key", nil, func(t *Topology) { t.Pods[0].Netns = "/proc/1/ns/net" }, "MAC does not verify"},
		{"another host's key", other, func(*Topology) {}, "MAC does not verify"},
		{"this host's key, a pod outside its node", key, func(t *Topology) { t.Pods[0].IP = "10.99.0.1" }, "does not validate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(c.Path, saved, 0o600); err != nil {
				t.Fatal(err)
			}
			tamper(t, c.Path, tc.key, tc.edit)
			misses = nil
			r, found := load(t, c, file)
			if found != CachedNothing || !reflect.DeepEqual(r, want) {
				t.Fatalf("found %s, model equal to the file's: %v", found, reflect.DeepEqual(r, want))
			}
			if len(misses) != 1 || !strings.Contains(misses[0], tc.miss) {
				t.Fatalf("misses %q, want %q", misses, tc.miss)
			}
		})
	}
	// A key file that is not a key: the cache is not read.
	if err := os.WriteFile(c.Path, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, found := load(t, c, file); found != CachedNothing {
		t.Fatalf("found %s with a bad key", found)
	}
}
