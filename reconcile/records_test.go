package reconcile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A symbolic link planted among the records is not followed.
func TestRecordsRefuseASymlink(t *testing.T) {
	cfg := &Config{Node: "n1", StateDir: t.TempDir()}
	dir := filepath.Join(cfg.nodeStateDir(), "netns")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("pod/t/a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "victim")); err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.ownedNetns(); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("records through a symlink: %v, %v", got, err)
	}
	// The directory itself as a link is refused too.
	if err := os.Rename(dir, dir+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir+".real", dir); err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.ownedNetns(); !errors.Is(err, unix.ENOTDIR) { // O_DIRECTORY|O_NOFOLLOW on a link
		t.Fatalf("a records directory that is a symlink: %v, %v", got, err)
	}
}
