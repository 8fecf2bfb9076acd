package spec

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
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
// The cache is trusted no more than the file: it is authenticated with a
// key of the host (KeyFile beside it, 32 random bytes made on the first
// store), so that only a netreconcile of this host that read the file
// wrote it, and what it gives back is validated as a decoded file is
// (Resolve runs on the cached file, as on every file).
//
// A cache that is missing, unreadable, damaged, from another binary or
// host key, or whose content does not validate is a miss, never an error:
// the file is then decoded as usual. What gob cannot carry exactly (an
// empty but non-nil slice or map, say) is not stored.
type ParseCache struct {
	Path string // the cache file; "" loads without a cache
	// Store records the model and items after a miss. plan leaves it
	// unset: it changes nothing, not even the cache.
	Store bool
	// Miss, when set, is told why a cache that was there was not used
	// (for the verbose log).
	Miss func(reason string)
	// MaxSize is --max-file-size (0: DefaultMaxFileSize): a cache more
	// than cacheSizeFactor times its size is not read.
	MaxSize int64
}

// KeyFile is the name of the host's cache key, beside the cache.
const KeyFile = "parse.key"

// keySize is the length of the key: that of HMAC-SHA256's output.
const keySize = sha256.Size

// cacheSizeFactor bounds the cache file read: the cache of the largest
// set (MaxSize) is a few times its size.
const cacheSizeFactor = 4

// cacheMagic starts a cache file; bump it when the layout changes.
const cacheMagic = "netreconcile parse cache v4\n"

// A cache file is: magic, the binary's key, the file's key, the MAC (of
// everything after the magic but the MAC), the model's length (8 bytes),
// the model (gob: the decoded file and its zero positions), the items
// (gob).
const cacheHeader = len(cacheMagic) + 3*sha256.Size + 8

// cachedModel is what the cache keeps of a set: for each source, what it
// decoded to, and where fields with a zero value were written (Resolve
// tells them from absent ones).
type cachedModel struct {
	Parts []cachedPart
}

type cachedPart struct {
	Name     string
	Topology *Topology
	Zeros    map[string]Pos
}

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
// The cache is keyed by the whole set: its sources' names and bytes.
func (c ParseCache) Load(srcs []Source) (r *Resolved, found Cached, commit func() error, err error) {
	commit = func() error { return nil }
	keys, keyed := cacheKeysOf(srcs)
	var p Parser
	found = CachedNothing
	if c.Path != "" && keyed {
		model, items := c.read(keys)
		if model != nil {
			r, err := model.resolve()
			if err == nil {
				return r, CachedModel, commit, nil
			}
			c.miss("the cached model does not validate: " + err.Error())
		} else if len(items) > 0 {
			p.files, found = map[string]*itemCache{}, CachedItems
			for _, src := range srcs {
				p.files[src.Name] = &itemCache{items: items} // read only: each source makes its own
			}
		}
	}
	// Items are kept for the cache only: remembering them costs a copy of
	// the file's text and a map of every item, a tenth of a plan's memory.
	store := c.Path != "" && keyed && c.Store
	parts, perr := p.parse(srcs, store || found == CachedItems)
	r, err = resolveParsed(assemble(parts, perr))
	if err != nil && found == CachedItems {
		// Cached items that do not validate are a miss: decode again.
		c.miss("the cached items do not validate")
		p, found = Parser{}, CachedNothing
		parts, perr = p.parse(srcs, store)
		r, err = resolveParsed(assemble(parts, perr))
	}
	if err != nil || !store {
		return r, found, commit, err
	}
	// Encoding costs some ms: done beside the command's own work, which
	// only reads r and the items.
	var out []byte
	var encErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, encErr = encodeCache(keys, modelOf(parts), p.items())
	}()
	return r, found, func() error {
		<-done
		if encErr != nil {
			return encErr
		}
		if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
			return err
		}
		key, err := c.makeKey()
		if err != nil {
			return err
		}
		seal(key, out)
		return c.write(out)
	}, nil
}

// modelOf is what the cache keeps of decoded parts.
func modelOf(parts []part) cachedModel {
	m := cachedModel{Parts: make([]cachedPart, len(parts))}
	for i, pt := range parts {
		m.Parts[i] = cachedPart{Name: pt.pos.File, Topology: pt.t, Zeros: pt.pos.zeroPaths()}
	}
	return m
}

// resolve merges and resolves the cached parts, as Load does decoded ones.
func (m *cachedModel) resolve() (*Resolved, error) {
	parts := make([]part, len(m.Parts))
	for i, cp := range m.Parts {
		if cp.Topology == nil {
			return nil, errors.New("a part without its topology")
		}
		parts[i] = part{cp.Topology, &Positions{File: cp.Name, paths: cp.Zeros}}
	}
	return resolveParsed(assemble(parts, nil))
}

// maxCache bounds the cache file read.
func (c ParseCache) maxCache() int64 {
	if c.MaxSize <= 0 {
		return cacheSizeFactor * DefaultMaxFileSize
	}
	return cacheSizeFactor * c.MaxSize
}

// miss tells c.Miss why the cache was not used.
func (c ParseCache) miss(reason string) {
	if c.Miss != nil {
		c.Miss(reason)
	}
}

// keyPath is the host key's file.
func (c ParseCache) keyPath() string { return filepath.Join(filepath.Dir(c.Path), KeyFile) }

// readKey reads the host key.
func (c ParseCache) readKey() ([]byte, error) {
	key, err := statedir.ReadFile(c.keyPath(), keySize)
	if err == nil && len(key) != keySize {
		err = fmt.Errorf("parse cache key %s: %d bytes, want %d", c.keyPath(), len(key), keySize)
	}
	return key, err
}

// makeKey reads the host key, making it first when there is none:
// random, readable by its owner alone, created exclusively (two commands
// storing at once both end up with the one that won).
func (c ParseCache) makeKey() ([]byte, error) {
	key, err := c.readKey()
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := statedir.OpenFile(c.keyPath(), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return c.readKey()
	}
	if err != nil {
		return nil, err
	}
	_, err = f.Write(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return key, err
}

// mac is the MAC of a cache file laid out in b (see cacheHeader).
func mac(key, b []byte) []byte {
	at := len(cacheMagic)
	h := hmac.New(sha256.New, key)
	h.Write(b[at : at+2*sha256.Size])
	h.Write(b[at+3*sha256.Size:])
	return h.Sum(nil)
}

// seal writes the MAC into the cache file b.
func seal(key, b []byte) {
	at := len(cacheMagic) + 2*sha256.Size
	copy(b[at:at+sha256.Size], mac(key, b))
}

// cacheKeysOf digests the identity of the running binary (path, inode,
// size, modification time, and the version control stamp it was built
// with), and that with the set's names and bytes: a rebuilt binary, whose
// decoding rules may differ, never reads what an older one stored.
func cacheKeysOf(srcs []Source) (keys cacheKeys, ok bool) {
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
	for _, src := range srcs {
		_ = binary.Write(h, binary.LittleEndian, [2]int64{int64(len(src.Name)), int64(len(src.Data))})
		h.Write([]byte(src.Name))
		h.Write(src.Data)
	}
	copy(keys.file[:], h.Sum(nil))
	return keys, true
}

// read returns the cached model when the file's key matches, else the
// cached items when the binary's does; nil and nil otherwise.
func (c ParseCache) read(keys cacheKeys) (*cachedModel, map[string]*item) {
	b, err := statedir.ReadFile(c.Path, c.maxCache())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil || len(b) < cacheHeader || string(b[:len(cacheMagic)]) != cacheMagic {
		c.miss(fmt.Sprintf("unreadable or not a cache (%v)", err))
		return nil, nil
	}
	at := len(cacheMagic)
	bin, file, sum := b[at:at+sha256.Size], b[at+sha256.Size:at+2*sha256.Size], b[at+2*sha256.Size:at+3*sha256.Size]
	if !bytes.Equal(bin, keys.bin[:]) {
		return nil, nil // another binary's
	}
	key, err := c.readKey()
	if err != nil {
		c.miss("no key to check it with: " + err.Error())
		return nil, nil
	}
	if !hmac.Equal(sum, mac(key, b)) {
		c.miss("its MAC does not verify with this host's key (damaged, or not written here)")
		return nil, nil
	}
	n := binary.LittleEndian.Uint64(b[cacheHeader-8 : cacheHeader])
	if n > uint64(len(b)-cacheHeader) {
		return nil, nil
	}
	model, items := b[cacheHeader:cacheHeader+int(n)], b[cacheHeader+int(n):]
	if bytes.Equal(file, keys.file[:]) {
		var m cachedModel
		if gob.NewDecoder(bytes.NewReader(model)).Decode(&m) == nil && len(m.Parts) > 0 {
			return &m, nil
		}
	}
	return nil, readItems(items)
}

// encodeCache lays out a cache file for r and the items it was built from.
func encodeCache(keys cacheKeys, m cachedModel, items map[string]*item) ([]byte, error) {
	if err := exact(reflect.ValueOf(&m).Elem()); err != nil {
		return nil, err
	}
	var model, rest bytes.Buffer
	if err := gob.NewEncoder(&model).Encode(m); err != nil {
		return nil, err
	}
	if err := encodeItems(&rest, items); err != nil {
		return nil, err
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(model.Len()))
	out := make([]byte, 0, cacheHeader+model.Len()+rest.Len())
	out = append(append(append(out, cacheMagic...), keys.bin[:]...), keys.file[:]...)
	out = append(append(append(out, make([]byte, sha256.Size)...), n[:]...), model.Bytes()...) // MAC: see seal
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
			k := seq + "\x00" + e.Field(0).String()
			items[k] = &item{value: e.Field(2), zeros: zeros}
		}
	}
	return items
}

// write replaces the cache file with out, atomically.
func (c ParseCache) write(out []byte) error {
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
