package spec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultMaxFileSize is --max-file-size's default. A 5,000-node cluster
// (250,000 pods, 50,000 services) is some 45 MB of YAML.
const DefaultMaxFileSize = 64 << 20

// Source is one named part of a topology: a file, standard input, or an
// entry of another store (an etcd key, say). Name is what messages call
// it; Data is its text.
type Source struct {
	Name string
	Data []byte
}

// A Provider lists the sources of one topology, in the order they merge.
// Files (paths, directories, "-") is one kind; a key-value store's prefix
// can be another, every key one source.
type Provider interface {
	// Sources reads the set, each source and their total within max bytes
	// (an error wrapping ErrTooLarge otherwise).
	Sources(max int64) ([]Source, error)
	// String names the set for messages.
	String() string
}

// A Watcher is a Provider that reports its own changes (a store's watch).
// The watch daemon calls Watch once, after a first read of Sources; it
// returns when ctx ends. changed(nil) says the set may have changed since
// that read (the daemon reads Sources again); changed(err) says the store
// cannot be reached (the daemon logs it and keeps its last good state),
// and a changed(nil) follows once it is reached again. Files are not
// Watchers: the daemon follows their paths with inotify.
type Watcher interface {
	Provider
	Watch(ctx context.Context, changed func(error)) error
}

// An Opener makes the Provider of one -f argument that names a store: a
// URL such as etcd://HOST:PORT/PREFIX.
type Opener func(arg string) (Provider, error)

// Set is the -f arguments in order, files and stores mixed: consecutive
// paths make one Files, each store URL its own Provider. Its sources are
// theirs, in that order.
type Set []Provider

// OpenSet groups args into a Set; a URL (scheme://...) is opened by the
// opener of its scheme, and a scheme without one is an error.
func OpenSet(args []string, openers map[string]Opener) (Set, error) {
	var set Set
	var files Files
	for _, arg := range args {
		scheme, ok := URLScheme(arg)
		if !ok {
			files = append(files, arg)
			continue
		}
		open := openers[scheme]
		if open == nil {
			return nil, fmt.Errorf("load topology: -f %s: unknown source %s:// (give a path, a directory, -, etcd://HOST:PORT/PREFIX or etcds://HOST:PORT/PREFIX)", arg, scheme)
		}
		p, err := open(arg)
		if err != nil {
			return nil, err
		}
		if len(files) > 0 {
			set, files = append(set, files), nil
		}
		set = append(set, p)
	}
	if len(files) > 0 {
		set = append(set, files)
	}
	return set, nil
}

// URLScheme returns the scheme of an -f argument written as a URL
// (letters, digits, "+", "-" or "." followed by "://"); ok is false for a
// path.
func URLScheme(arg string) (scheme string, ok bool) {
	scheme, _, ok = strings.Cut(arg, "://")
	if !ok || scheme == "" || strings.ContainsFunc(scheme, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')
	}) {
		return "", false
	}
	return scheme, true
}

// String joins the parts' names.
func (s Set) String() string {
	names := make([]string, len(s))
	for i, p := range s {
		names[i] = p.String()
	}
	return strings.Join(names, ", ")
}

// Sources reads every part in order. Each part is bounded by max, and
// so is their sum; a source named twice (a file given twice, a prefix
// given twice) is an error.
func (s Set) Sources(max int64) ([]Source, error) {
	if len(s) == 1 {
		return s[0].Sources(max)
	}
	var out []Source
	var total int64
	seen := map[string]bool{}
	for _, p := range s {
		srcs, err := p.Sources(max)
		if err != nil {
			return nil, err
		}
		for _, src := range srcs {
			key := src.Name
			if _, url := URLScheme(key); !url && key != "<stdin>" {
				key = filepath.Clean(key)
			}
			if seen[key] {
				return nil, fmt.Errorf("load topology: %s is in the set twice (-f %s)", src.Name, s)
			}
			seen[key] = true
			if total += int64(len(src.Data)); total > max {
				return nil, SetTooLarge(src.Name, total, max)
			}
		}
		out = append(out, srcs...)
	}
	return out, nil
}

// Paths is the -f arguments that are paths (files, directories, "-"),
// the ones followed through the file system.
func (s Set) Paths() Files {
	var out Files
	for _, p := range s {
		if f, ok := p.(Files); ok {
			out = append(out, f...)
		}
	}
	return out
}

// Watchers is the parts that report their own changes.
func (s Set) Watchers() []Watcher {
	var out []Watcher
	for _, p := range s {
		if w, ok := p.(Watcher); ok {
			out = append(out, w)
		}
	}
	return out
}

// Close releases what the parts hold (a store's connection).
func (s Set) Close() error {
	var errs []error
	for _, p := range s {
		if c, ok := p.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Files is a Provider of -f arguments: files, directories (every *.yaml
// and *.yml in them, in name order, not recursive, hidden entries
// skipped) and "-" (standard input).
type Files []string

// String joins the arguments.
func (f Files) String() string { return strings.Join(f, ", ") }

// Stdin reports whether the set reads standard input.
func (f Files) Stdin() bool {
	for _, p := range f {
		if p == "-" {
			return true
		}
	}
	return false
}

// Paths lists the files the set holds now, in order: a directory's
// entries as they are listed at this moment.
func (f Files) Paths() ([]string, error) {
	var out []string
	seen := map[string]string{}
	for _, arg := range f {
		names, err := expand(arg)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			key := n
			if n != "-" {
				key = filepath.Clean(n)
			}
			if first, dup := seen[key]; dup {
				return nil, fmt.Errorf("load topology: %s is in the set twice (-f %s and -f %s)", n, first, arg)
			}
			seen[key] = arg
			out = append(out, n)
		}
	}
	return out, nil
}

// Sources reads every file of the set (see Files).
func (f Files) Sources(max int64) ([]Source, error) {
	paths, err := f.Paths()
	if err != nil {
		return nil, err
	}
	out := make([]Source, 0, len(paths))
	var total int64
	for _, p := range paths {
		src, err := readSource(p, max)
		if err != nil {
			return nil, err
		}
		if total += int64(len(src.Data)); total > max {
			return nil, SetTooLarge(src.Name, total, max)
		}
		out = append(out, src)
	}
	return out, nil
}

// ReadFiles reads the set of -f arguments within max bytes.
func ReadFiles(max int64, args ...string) ([]Source, error) { return Files(args).Sources(max) }

// IsTopologyFile reports whether a directory entry's name is one the set
// reads: *.yaml or *.yml, not hidden. Hidden entries include Kubernetes'
// ..data and ..<timestamp> of a ConfigMap volume, whose files are read
// through the symbolic links beside them, as the volume shows them.
func IsTopologyFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// expand lists what one -f argument names: itself, or a directory's
// topology files in name order.
func expand(arg string) ([]string, error) {
	if arg == "-" {
		return []string{arg}, nil
	}
	st, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	if !st.IsDir() {
		return []string{arg}, nil
	}
	entries, err := os.ReadDir(arg) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !IsTopologyFile(e.Name()) {
			continue
		}
		p := filepath.Join(arg, e.Name())
		// Follow symbolic links (a ConfigMap's entries are links into
		// ..data); a subdirectory is not read. A dangling link is kept,
		// so that reading it says what is wrong.
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load topology: directory %s has no *.yaml or *.yml file", arg)
	}
	return out, nil
}

// readSource reads one file ("-": standard input) of at most max bytes.
func readSource(path string, max int64) (Source, error) {
	name, r := path, io.Reader(os.Stdin)
	var sized int64 // a regular file's size, read into a buffer made once
	if path == "-" {
		name = "<stdin>"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return Source{}, fmt.Errorf("load topology: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if st.Size() > max {
				return Source{}, FileTooLarge(name, st.Size(), max)
			}
			sized = st.Size()
		}
		r = f
	}
	// One byte past the limit tells an oversized input (a pipe, a file
	// that grew) without the rest of it ever being in memory.
	data, err := readAll(io.LimitReader(r, max+1), sized)
	if err != nil {
		return Source{}, fmt.Errorf("read topology %s: %w", name, err)
	}
	if int64(len(data)) > max {
		return Source{}, tooLarge(name, fmt.Sprintf("file is over the %s limit", size(max)))
	}
	return Source{Name: name, Data: data}, nil
}

// readAll is io.ReadAll into a buffer made for size bytes and the EOF
// after them: ReadAll doubled its way to a cluster's 10 MB, copying, on
// every reload.
func readAll(r io.Reader, size int64) ([]byte, error) {
	b := make([]byte, 0, size+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) { // more than size (a file that grew, a pipe)
			b = append(b, 0)[:len(b)]
		}
	}
}

// FileTooLarge is the error of one source of n bytes over max (a store's
// value, say), as a file's is worded.
func FileTooLarge(name string, n, max int64) error {
	return tooLarge(name, fmt.Sprintf("file is %s, over the %s limit", size(n), size(max)))
}

// SetTooLarge is the error of a set whose sources up to name total more
// than max.
func SetTooLarge(name string, total, max int64) error {
	return tooLarge(name, fmt.Sprintf("the set is %s up to this file, over the %s limit of the whole set", size(total), size(max)))
}

// TooLarge is the error of a source or set over --max-file-size, msg
// saying by how much.
func TooLarge(name, msg string) error { return tooLarge(name, msg) }

// tooLarge is the error of a file or set over --max-file-size.
func tooLarge(name, msg string) error {
	return &Errors{List: []*Error{{File: name, Msg: msg + " (--max-file-size)", Err: ErrTooLarge}}}
}

// size prints a byte count for messages: whole MiB exactly, else with
// one decimal and the bytes.
func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	}
	return fmt.Sprintf("%d bytes", n)
}
