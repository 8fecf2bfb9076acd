package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/netreconcile/netreconcile/internal/statedir"
)

// ParseCache keeps, for the last file loaded through it with Store set,
// its model and its decoded items, keyed by the binary that built them.
// Loading the same bytes again skips decoding YAML, which is most of a
// command's fixed cost with thousands of items (about 70 of 200 ms for a
// plan at 1000 pods and 5000 services): the model is read back in a few
// ms. Loading an edited file decodes only the items that changed, as the
// watch daemon's Parser does between passes.
//
// A cache that is missing, unreadable, damaged or from another binary is
// a miss, never an error: the file is then decoded as usual. What gob
// cannot carry exactly (an empty but non-nil slice or map, say) is not
// stored.
type ParseCache struct {
	Path string // the cache file; "" loads without a cache
	// Store records the model and items after a miss. plan leaves it
	// unset: it changes nothing, not even the cache.
	Store bool
}

// maxCacheSize bounds the cache file read: the cache of the largest file
// (MaxFileSize) is a few times its size.
const maxCacheSize = 16 * MaxFileSize

// cacheMagic starts a cache file; bump it when the layout changes.
const cacheMagic = "netreconcile parse cache v2\n"

// A cache file is: magic, the binary's key, the file's key, the digest of
// the rest, the model's length (8 bytes), the model (gob), the items (gob).
const cacheHeader = len(cacheMagic) + 3*sha256.Size + 8

type cacheKeys struct{ bin, file [sha256.Size]byte }

// Cached says what a load found in the cache.
type Cached string

const (
	CachedNothing Cached = "nothing"
	CachedItems   Cached = "items" // only the unchanged items were reused
	CachedModel   Cached = "model" // the same bytes: the model itself
)

// Load is spec.Load through c; found says what it reused. With Store set,
// commit writes the cache; call it once the command has succeeded (a run
// that fails changes nothing, the cache included). commit is never nil.
func (c ParseCache) Load(path string) (r *Resolved, found Cached, commit func() error, err error) {
	commit = func() error { return nil }
	name, data, err := readFile(path)
	if err != nil {
		return nil, CachedNothing, commit, err
	}
	keys, keyed := cacheKeysOf(data)
	var p Parser
	found = CachedNothing
	if c.Path != "" && keyed {
		model, items := c.read(keys)
		if model != nil {
			return model, CachedModel, commit, nil
		}
		if len(items) > 0 {
			p.items, found = items, CachedItems
		}
	}
	r, err = p.Load(name, data)
	if err != nil || c.Path == "" || !keyed || !c.Store {
		return r, found, commit, err
	}
	// Encoding costs some ms: done beside the command's own work, which
	// only reads r and the items.
	var out []byte
	var encErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, encErr = encodeCache(keys, r, p.items)
	}()
	return r, found, func() error {
		<-done
		if encErr != nil {
			return encErr
		}
		return c.write(out)
	}, nil
}

// cacheKeysOf digests the identity of the running binary (path, inode,
// size, modification time, and the version control stamp it was built
// with), and that with the file's bytes: a rebuilt binary, whose decoding
// rules may differ, never reads what an older one stored.
func cacheKeysOf(data []byte) (keys cacheKeys, ok bool) {
	exe, err := os.Executable()
	if err != nil {
		return keys, false
	}
	st, err := os.Stat(exe)
	if err != nil {
		return keys, false
	}
	h := sha256.New()
	h.Write([]byte(cacheMagic))
	h.Write([]byte(exe))
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	_ = binary.Write(h, binary.LittleEndian, [3]int64{int64(ino), st.Size(), st.ModTime().UnixNano()})
	if bi, ok := debug.ReadBuildInfo(); ok {
		h.Write([]byte(bi.Main.Version))
		for _, s := range bi.Settings {
			if strings.HasPrefix(s.Key, "vcs.") {
				h.Write([]byte(s.Key + "=" + s.Value + "\n"))
			}
		}
	}
	copy(keys.bin[:], h.Sum(nil))
	h.Write(data)
	copy(keys.file[:], h.Sum(nil))
	return keys, true
}

// read returns the cached model when the file's key matches, else the
// cached items when the binary's does; nil and nil otherwise.
func (c ParseCache) read(keys cacheKeys) (*Resolved, map[string]*item) {
	b, err := statedir.ReadFile(c.Path, maxCacheSize)
	if err != nil || len(b) < cacheHeader || string(b[:len(cacheMagic)]) != cacheMagic {
		return nil, nil
	}
	at := len(cacheMagic)
	bin, file, sum := b[at:at+sha256.Size], b[at+sha256.Size:at+2*sha256.Size], b[at+2*sha256.Size:at+3*sha256.Size]
	if !bytes.Equal(bin, keys.bin[:]) {
		return nil, nil
	}
	if got := sha256.Sum256(b[at+3*sha256.Size:]); !bytes.Equal(sum, got[:]) {
		return nil, nil // torn or damaged
	}
	n := binary.LittleEndian.Uint64(b[cacheHeader-8 : cacheHeader])
	if n > uint64(len(b)-cacheHeader) {
		return nil, nil
	}
	model, items := b[cacheHeader:cacheHeader+int(n)], b[cacheHeader+int(n):]
	if bytes.Equal(file, keys.file[:]) {
		r := &Resolved{}
		if gob.NewDecoder(bytes.NewReader(model)).Decode(r) == nil {
			return r, nil
		}
	}
	return nil, readItems(items)
}

// encodeCache lays out a cache file for r and the items it was built from.
func encodeCache(keys cacheKeys, r *Resolved, items map[string]*item) ([]byte, error) {
	if err := exact(reflect.ValueOf(r).Elem()); err != nil {
		return nil, err
	}
	var model, rest bytes.Buffer
	if err := gob.NewEncoder(&model).Encode(r); err != nil {
		return nil, err
	}
	if err := encodeItems(&rest, items); err != nil {
		return nil, err
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(model.Len()))
	h := sha256.New()
	h.Write(n[:])
	h.Write(model.Bytes())
	h.Write(rest.Bytes())
	out := make([]byte, 0, cacheHeader+model.Len()+rest.Len())
	out = append(append(append(out, cacheMagic...), keys.bin[:]...), keys.file[:]...)
	out = append(append(h.Sum(out), n[:]...), model.Bytes()...)
	return append(out, rest.Bytes()...), nil
}

// itemEntry is the type of one cached item of a sequence of T.
func itemEntry(t reflect.Type) reflect.Type {
	return reflect.StructOf([]reflect.StructField{
		{Name: "Text", Type: reflect.TypeFor[string]()},
		{Name: "Zeros", Type: reflect.TypeFor[map[string]Pos]()},
		{Name: "Value", Type: t},
	})
}

// encodeItems writes the names of the sequences with items, then for each
// a slice of its items' entries. Items gob cannot carry exactly are left
// out: they are decoded again next time.
func encodeItems(w *bytes.Buffer, items map[string]*item) error {
	bySeq := map[string][]string{}
	for k := range items {
		seq, _, _ := strings.Cut(k, "\x00")
		bySeq[seq] = append(bySeq[seq], k)
	}
	fields := fieldsOf(reflect.TypeFor[Topology]())
	topo := reflect.TypeFor[Topology]()
	var seqs []string
	for seq := range bySeq {
		if i, ok := fields[seq]; ok && topo.Field(i).Type.Kind() == reflect.Slice {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	enc := gob.NewEncoder(w)
	if err := enc.Encode(seqs); err != nil {
		return err
	}
	for _, seq := range seqs {
		et := itemEntry(topo.Field(fields[seq]).Type.Elem())
		entries := reflect.MakeSlice(reflect.SliceOf(et), 0, len(bySeq[seq]))
		for _, k := range bySeq[seq] {
			it := items[k]
			if exact(it.value) != nil || (it.zeros != nil && len(it.zeros) == 0) {
				continue
			}
			e := reflect.New(et).Elem()
			e.Field(0).SetString(k[len(seq)+1:])
			e.Field(1).Set(reflect.ValueOf(it.zeros))
			e.Field(2).Set(it.value)
			entries = reflect.Append(entries, e)
		}
		if err := enc.EncodeValue(entries); err != nil {
			return err
		}
	}
	return nil
}

// readItems reads what encodeItems wrote into a Parser's item map; nil
// when it cannot.
func readItems(b []byte) map[string]*item {
	dec := gob.NewDecoder(bytes.NewReader(b))
	var seqs []string
	if dec.Decode(&seqs) != nil {
		return nil
	}
	fields := fieldsOf(reflect.TypeFor[Topology]())
	topo := reflect.TypeFor[Topology]()
	items := map[string]*item{}
	for _, seq := range seqs {
		i, ok := fields[seq]
		if !ok || topo.Field(i).Type.Kind() != reflect.Slice {
			return nil
		}
		entries := reflect.New(reflect.SliceOf(itemEntry(topo.Field(i).Type.Elem()))).Elem()
		if dec.DecodeValue(entries.Addr()) != nil {
			return nil
		}
		for j := range entries.Len() {
			e := entries.Index(j)
			zeros, _ := e.Field(1).Interface().(map[string]Pos)
			items[seq+"\x00"+e.Field(0).String()] = &item{value: e.Field(2), zeros: zeros}
		}
	}
	return items
}

// write replaces the cache file with out, atomically.
func (c ParseCache) write(out []byte) error {
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.Path), ".parse-cache-*")
	if err != nil {
		return err
	}
	// CreateTemp makes a new file (O_EXCL), and rename replaces whatever
	// is at Path, a symbolic link included, rather than following it.
	defer os.Remove(tmp.Name()) // after a successful rename: nothing there
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.Path)
}

// errInexact marks a model gob would not give back equal.
var errInexact = errors.New("not exactly representable in gob")

// exact reports whether gob gives v back unchanged: gob decodes an empty
// slice or map as nil, a pointer to a zero non-struct value as nil, and
// drops unexported fields and interfaces it was not told about.
func exact(v reflect.Value) error {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type().Implements(binaryMarshaler) || reflect.PointerTo(v.Type()).Implements(binaryMarshaler) {
			return nil // netip types: gob uses their own encoding
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				return fmt.Errorf("%s.%s: unexported: %w", v.Type(), f.Name, errInexact)
			}
			if err := exact(v.Field(i)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if !v.IsNil() && v.Len() == 0 {
			return fmt.Errorf("%s: empty slice: %w", v.Type(), errInexact)
		}
		for i := range v.Len() {
			if err := exact(v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			if err := exact(v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if !v.IsNil() && v.Len() == 0 {
			return fmt.Errorf("%s: empty map: %w", v.Type(), errInexact)
		}
		for it := v.MapRange(); it.Next(); {
			if err := exact(it.Value()); err != nil {
				return err
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if v.Elem().Kind() != reflect.Struct && v.Elem().IsZero() {
			return fmt.Errorf("%s: pointer to a zero value: %w", v.Type(), errInexact)
		}
		return exact(v.Elem())
	case reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return fmt.Errorf("%s: %w", v.Type(), errInexact)
	}
	return nil
}

var binaryMarshaler = reflect.TypeFor[interface{ MarshalBinary() ([]byte, error) }]()
