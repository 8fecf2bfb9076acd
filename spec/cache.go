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
	"strings"
	"syscall"
)

// ParseCache keeps the model of the last file loaded through it with Store
// set, keyed by the file's bytes and by the binary that built it. Loading
// the same file again skips decoding YAML, which is most of a command's
// fixed cost with thousands of items (about 70 of 200 ms for a plan at
// 1000 pods and 5000 services); decoding the cache takes a few ms.
//
// A cache that is missing, unreadable, from another binary or for other
// bytes is a miss, never an error: the file is then decoded as usual.
// Models that gob cannot carry exactly (an empty but non-nil slice or map,
// say) are not stored.
type ParseCache struct {
	Path string // the cache file; "" loads without a cache
	// Store records the model after a miss. plan leaves it unset: it
	// changes nothing, not even the cache.
	Store bool
}

// cacheMagic starts a cache file; bump it when the layout changes.
const cacheMagic = "netreconcile parse cache v1\n"

// Load is spec.Load through c. hit reports whether the model came from
// the cache. After a miss with Store set, commit writes the model to the
// cache; call it once the command has succeeded (a run that fails changes
// nothing, the cache included). commit is never nil.
func (c ParseCache) Load(path string) (r *Resolved, hit bool, commit func() error, err error) {
	commit = func() error { return nil }
	name, data, err := readFile(path)
	if err != nil {
		return nil, false, commit, err
	}
	key, keyed := cacheKey(data)
	if c.Path != "" && keyed {
		if r := c.read(key); r != nil {
			return r, true, commit, nil
		}
	}
	r, err = resolveParsed(Parse(name, data))
	if err != nil || c.Path == "" || !keyed || !c.Store {
		return r, false, commit, err
	}
	// Encoding costs some ms: done beside the command's own work, which
	// only reads r.
	var out []byte
	var encErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, encErr = encodeCache(key, r)
	}()
	return r, false, func() error {
		<-done
		if encErr != nil {
			return encErr
		}
		return c.write(out)
	}, nil
}

// cacheKey digests the file's bytes with the identity of the running
// binary (path, inode, size, modification time, and the version control
// revision it was built from): a rebuilt binary, whose decoding rules may
// differ, never reads an older model.
func cacheKey(data []byte) (key [sha256.Size]byte, ok bool) {
	exe, err := os.Executable()
	if err != nil {
		return key, false
	}
	st, err := os.Stat(exe)
	if err != nil {
		return key, false
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
	h.Write(data)
	copy(key[:], h.Sum(nil))
	return key, true
}

// cacheHeader is the length of what precedes a cache file's payload.
const cacheHeader = len(cacheMagic) + 2*sha256.Size

func (c ParseCache) read(key [sha256.Size]byte) *Resolved {
	b, err := os.ReadFile(c.Path)
	if err != nil || len(b) < cacheHeader || string(b[:len(cacheMagic)]) != cacheMagic {
		return nil
	}
	at := len(cacheMagic)
	if !bytes.Equal(b[at:at+sha256.Size], key[:]) {
		return nil
	}
	payload := b[cacheHeader:]
	if sum := sha256.Sum256(payload); !bytes.Equal(b[at+sha256.Size:cacheHeader], sum[:]) {
		return nil // torn or damaged
	}
	r := &Resolved{}
	if gob.NewDecoder(bytes.NewReader(payload)).Decode(r) != nil {
		return nil
	}
	return r
}

// encodeCache lays out a cache file for r: magic, key, digest of the
// payload, payload (gob).
func encodeCache(key [sha256.Size]byte, r *Resolved) ([]byte, error) {
	if err := exact(reflect.ValueOf(r).Elem()); err != nil {
		return nil, err
	}
	var payload bytes.Buffer
	if err := gob.NewEncoder(&payload).Encode(r); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload.Bytes())
	out := make([]byte, 0, cacheHeader+payload.Len())
	return append(append(append(append(out, cacheMagic...), key[:]...), sum[:]...), payload.Bytes()...), nil
}

// write replaces the cache file with out, atomically.
func (c ParseCache) write(out []byte) error {
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.Path), ".parse-cache-*")
	if err != nil {
		return err
	}
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
