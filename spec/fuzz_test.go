package spec

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the decoder and the validator. The
// file is user input: whatever it holds, they must not panic, and every
// failure must be an *Errors whose entries all say something (or, for
// the few non-content failures, a plain error with a message).
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("<<: {<<: {kind: x}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, pos, err := Parse("fuzz.yaml", data)
		checkErr(t, err)
		sameAsWhole(t, data, top, pos, err)
		// A Parser that saw part of the file first reuses what it can and
		// must still decode exactly what one document gives.
		var p itemCache
		parse("fuzz.yaml", data[:len(data)/2], &p)
		top2, pos2, err2 := parse("fuzz.yaml", data, &p)
		sameAsWhole(t, data, top2, pos2, err2)
		sameItemsThroughCache(t, p.kept())
		if top == nil {
			if err == nil {
				t.Fatal("no topology and no error")
			}
			return
		}
		if pos == nil {
			t.Fatal("a topology without positions")
		}
		r, err := Resolve(top, pos)
		checkErr(t, err)
		if err == nil && r == nil {
			t.Fatal("no Resolved and no error")
		}
		if err != nil && r != nil {
			t.Fatal("a Resolved with an error")
		}
		if r != nil {
			sameThroughCache(t, r)
		}
	})
}

// sameAsWhole fails unless the topology, positions and errors equal what
// decoding data as one document gives (split.go is an optimisation only).
func sameAsWhole(t *testing.T, data []byte, top *Topology, pos *Positions, err error) {
	t.Helper()
	wtop, wpos, werr := wholeParse("fuzz.yaml", data)
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("errors differ:\n%.2000v\none document:\n%.2000v", err, werr)
	}
	if !reflect.DeepEqual(top, wtop) {
		t.Fatalf("topologies differ:\n%.2000v\none document:\n%.2000v", fmt.Sprintf("%+v", top), fmt.Sprintf("%+v", wtop))
	}
	got, want := allPositions(pos), allPositions(wpos)
	for path, p := range want {
		if got[path] != p {
			t.Fatalf("path %s at %v, one document: %v", path, got[path], p)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d positions, one document: %d", len(got), len(want))
	}
	if top == nil {
		return
	}
	_, rerr := Resolve(top, pos)
	_, wrerr := Resolve(wtop, wpos)
	if fmt.Sprint(rerr) != fmt.Sprint(wrerr) {
		t.Fatalf("resolve errors differ:\n%v\none document:\n%v", rerr, wrerr)
	}
}

// allPositions lists every recorded path with its position, items of split
// sequences included, and checks that Lookup and Has agree with the list.
func allPositions(p *Positions) map[string]Pos {
	if p == nil {
		return nil
	}
	all := maps.Clone(p.paths)
	for k, items := range p.seqs {
		for i, sp := range items.spans {
			paths := p.allPaths(items, i)
			for rel, pos := range items.zerosOf(i) {
				if paths[rel] != pos {
					panic(fmt.Sprintf("%s[%d]: zero-valued %q at %v, decoded again at %v", k, i, rel, pos, paths[rel]))
				}
			}
			for rel, pos := range paths {
				path := index(k, i)
				if rel != "" {
					path += "." + rel
				}
				pos.Line += sp.line - 1
				all[path] = pos
			}
		}
	}
	for path, pos := range all {
		if !p.Has(path) || p.Lookup(path) != pos {
			panic(fmt.Sprintf("path %.200q: Has %v, Lookup %v, recorded %v", path, p.Has(path), p.Lookup(path), pos))
		}
	}
	return all
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		if err.Error() == "" {
			t.Fatalf("plain error %T without a message", err)
		}
		return
	}
	if len(errs.List) == 0 {
		t.Fatal("empty *Errors returned as an error")
	}
	for _, e := range errs.List {
		if e.Msg == "" {
			t.Fatalf("error without a message: %#v", e)
		}
		if e.Err == nil {
			t.Fatalf("error matches no sentinel: %v", e)
		}
		if e.Line < 0 || e.Column < 0 {
			t.Fatalf("negative position: %v", e)
		}
	}
}

// sameThroughCache fails unless a model that exact lets through comes back
// from gob equal: the parse cache stores only such models.
func sameThroughCache(t *testing.T, r *Resolved) {
	t.Helper()
	if exact(reflect.ValueOf(r).Elem()) != nil {
		return
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(r); err != nil {
		t.Fatalf("encode: %v", err)
	}
	back := &Resolved{}
	if err := gob.NewDecoder(&b).Decode(back); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(r, back) {
		t.Fatalf("through the cache:\n%+v\nwas:\n%+v", back, r)
	}
}

// sameItemsThroughCache fails unless the items the parse cache keeps come
// back from it equal (those exact lets through).
func sameItemsThroughCache(t *testing.T, items map[string]*item) {
	t.Helper()
	var b bytes.Buffer
	if err := encodeItems(&b, items); err != nil {
		t.Fatalf("encode items: %v", err)
	}
	back := readItems(b.Bytes())
	if back == nil {
		t.Fatal("items written but not read back")
	}
	for k, it := range items {
		got, ok := back[k]
		if exact(it.value) != nil || (it.zeros != nil && len(it.zeros) == 0) {
			if ok {
				t.Fatalf("item %.100q stored although gob cannot carry it", k)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got.value.Interface(), it.value.Interface()) || !reflect.DeepEqual(got.zeros, it.zeros) {
			t.Fatalf("item %.100q through the cache: %+v %v, was %+v %v", k, got, ok, it.value, it.zeros)
		}
	}
}
