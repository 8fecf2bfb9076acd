package spec

import (
	"context"
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
// The watch daemon calls Watch once; changed is called after each change
// of the set, and the daemon then reads Sources again. Files are not
// Watchers: the daemon follows their paths (Files.Watched) with inotify.
type Watcher interface {
	Provider
	Watch(ctx context.Context, changed func()) error
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
			return nil, tooLarge(src.Name, fmt.Sprintf("the set is %s up to this file, over the %s limit of the whole set", size(total), size(max)))
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
	if path == "-" {
		name = "<stdin>"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return Source{}, fmt.Errorf("load topology: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > max {
			return Source{}, tooLarge(name, fmt.Sprintf("file is %s, over the %s limit", size(st.Size()), size(max)))
		}
		r = f
	}
	// One byte past the limit tells an oversized input (a pipe, a file
	// that grew) without the rest of it ever being in memory.
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return Source{}, fmt.Errorf("read topology %s: %w", name, err)
	}
	if int64(len(data)) > max {
		return Source{}, tooLarge(name, fmt.Sprintf("file is over the %s limit", size(max)))
	}
	return Source{Name: name, Data: data}, nil
}

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
