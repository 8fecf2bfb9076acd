package statedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureMakesAPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "netreconcile")
	if err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() || st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("made %s with mode %v, want a directory of mode 0700", dir, st.Mode())
	}
	if err := Ensure(dir); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
}

func TestCheckRefusesWhatOthersCanChange(t *testing.T) {
	root := t.TempDir()
	open := filepath.Join(root, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o770, 0o702, 0o777} {
		if err := os.Chmod(open, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Check(open)
		if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "state directory "+open) ||
			!strings.Contains(err.Error(), "chmod 0700 "+open) {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if err := Ensure(open); !errors.Is(err, ErrUnsafe) {
			t.Fatalf("Ensure, mode %v: %v", mode, err)
		}
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(open); err != nil {
		t.Fatalf("a directory only its owner writes: %v", err)
	}

	link := filepath.Join(root, "link")
	if err := os.Symlink(open, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(link); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "symbolic link (to "+open+")") {
		t.Fatalf("symlink: %v", err)
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(file); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("a file: %v", err)
	}
	if exists, err := Check(filepath.Join(root, "missing")); exists || err != nil {
		t.Fatalf("missing: exists %v, %v", exists, err)
	}
	if _, err := os.Stat(filepath.Join(root, "missing")); !os.IsNotExist(err) {
		t.Fatal("Check made the directory")
	}
}

// Only root can give a directory away; as root, one of another user is
// refused even at mode 0700.
func TestCheckRefusesAnotherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := filepath.Join(t.TempDir(), "theirs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(dir); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "owned by uid 65534 with mode 0700") {
		t.Fatalf("another owner: %v", err)
	}
}
