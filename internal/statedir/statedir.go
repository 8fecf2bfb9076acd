// Package statedir guards netreconcile's state directory (--state-dir):
// the records of what it created, the node lock, the watch daemon's
// control socket, the parse cache and its key. What is read there decides
// what netreconcile deletes and which model it converges to, so the
// directory must be writable by the running user (root) alone, as sshd
// demands of ~/.ssh: a directory that another user can write is refused
// rather than trusted. Inside it, files are opened relative to their
// directory's descriptor, never through a symbolic link, and read with a
// bound on their size.
package statedir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnsafe is wrapped by the error about a state directory that another
// user could change.
var ErrUnsafe = errors.New("unsafe state directory")

// ErrTooLarge is wrapped by ReadFile's error about a file over its bound.
var ErrTooLarge = errors.New("file too large")

// Ensure makes dir when it is missing (mode 0700; missing parents 0755)
// and checks it as Check does. Commands that write state use it.
func Ensure(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create state directory %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create state directory %s: %w", dir, err)
	}
	_, err := Check(dir)
	return err
}

// Check verifies dir, when it exists: a directory, not a symbolic link,
// owned by the running user and not writable by group or others. exists
// is false (and err nil) when there is nothing at dir: a command that
// only reads state then has none to read.
func Check(dir string) (exists bool, err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		if target, lerr := os.Readlink(dir); lerr == nil {
			return true, fmt.Errorf("%w %s: a symbolic link (to %s); give the real directory as --state-dir",
				ErrUnsafe, dir, target)
		}
		return true, fmt.Errorf("%w %s: not a directory", ErrUnsafe, dir)
	case err != nil:
		return false, fmt.Errorf("open state directory %s: %w", dir, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return true, fmt.Errorf("stat state directory %s: %w", dir, err)
	}
	return true, checkStat(dir, &st)
}

// checkStat refuses a directory that someone but the running user may
// write into: they could plant records, a cache or links.
func checkStat(dir string, st *unix.Stat_t) error {
	uid, mode := int(st.Uid), st.Mode&0o7777
	if uid == os.Geteuid() && mode&0o022 == 0 {
		return nil
	}
	return fmt.Errorf("%w %s: owned by uid %d with mode %04o; it must be owned by uid %d (the user netreconcile "+
		"runs as) and writable by it alone: fix it with `chown %d %s && chmod 0700 %s`, or give another --state-dir",
		ErrUnsafe, dir, uid, mode, os.Geteuid(), os.Geteuid(), dir, dir)
}

// OpenFile opens path like os.OpenFile, relative to a descriptor of its
// directory, following a symbolic link neither at path nor at its
// directory: a link planted there is an error (ELOOP), not a way to
// make netreconcile read or write another file.
func OpenFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	dfd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, filepath.Base(path), flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// ReadFile reads path as OpenFile opens it, refusing a file of more than
// max bytes (wrapping ErrTooLarge) without reading past the bound.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, path, max)
}

// ReadAll reads r to its end, at most max bytes; name is for the error.
func ReadAll(r io.Reader, name string, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("read %s: more than %d bytes: %w", name, max, ErrTooLarge)
	}
	return b, nil
}

// WriteFile replaces path with data (mode perm) as OpenFile opens it.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
