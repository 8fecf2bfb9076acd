package daemon

import (
	"path/filepath"
	"testing"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// A directory of the set: its topology entries and a ConfigMap's ..data
// swap are news, other names in it are not; a file of the set is followed
// by its own name only.
func TestDirWatchSet(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	file := filepath.Join(other, "extra.yaml")
	w, err := newDirWatch([]string{dir, file}, NewMetrics(), logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	want := w.fileWants()
	if !want[dir] || !want[other] || len(want) != 2 {
		t.Fatalf("directories watched: %v", want)
	}
	for name, news := range map[string]bool{
		filepath.Join(dir, "team-a.yaml"):     true,
		filepath.Join(dir, "new.yml"):         true,
		filepath.Join(dir, "..data"):          true,
		filepath.Join(dir, "..data_tmp"):      true,
		filepath.Join(dir, "notes.txt"):       false,
		filepath.Join(dir, ".team-a.yaml.sw"): false,
		filepath.Join(dir, "a.yaml.tmp~"):     false,
		file:                                  true,
		filepath.Join(other, "b.yaml"):        false,
	} {
		if got := w.sort(fsnotify.Event{Name: name, Op: fsnotify.Create}).file; got != news {
			t.Errorf("%s: news %v, want %v", name, got, news)
		}
	}
}
