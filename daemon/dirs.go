package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/spec"
)

// dirWatch follows names through fsnotify on their directories: the
// topology files' (and their symlink targets'), the directories given as
// -f themselves (every *.yaml entry, and a ConfigMap's ..data), and those
// holding the
// watched namespaces' names (/var/run/netns). Directories, not files, so
// that an editor's write-and-rename and a ConfigMap's `..data` swap are
// seen, and a namespace's name can be seen to appear. It sorts events
// into what they mean; the loop decides what to do. Only the loop
// goroutine touches it.
type dirWatch struct {
	fw    *fsnotify.Watcher
	files []string // the topology's -f set, as given
	m     *Metrics
	log   logr.Logger

	fileDirs  map[string]bool   // directories whose events may mean "read the file again" ...
	fileNames map[string]bool   // ... when about these names (or a ConfigMap's "..*")
	setDirs   map[string]bool   // directories of the set: any *.yaml or *.yml entry is news
	nsPaths   map[string]string // watched namespace path -> key
	dirs      map[string]bool   // directories watched now
}

// fsNews is what one file system event means.
type fsNews struct {
	dirGone bool   // a watched directory went away: watch it again later
	file    bool   // the topology file may have changed
	netns   bool   // a watched namespace's name appeared or went away ...
	key     string // ... this namespace's key
	gone    bool   // ... and the name went away
}

func newDirWatch(files []string, m *Metrics, log logr.Logger) (*dirWatch, error) {
	// Buffered: a pass that creates a thousand pod namespaces queues a
	// thousand events while the loop is busy applying.
	fw, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return nil, err
	}
	return &dirWatch{fw: fw, files: files, m: m, log: log, dirs: map[string]bool{}}, nil
}

func (w *dirWatch) close() { w.fw.Close() }

// sort says what ev means, and forgets a watched directory that went.
func (w *dirWatch) sort(ev fsnotify.Event) fsNews {
	var n fsNews
	if w.dirs[ev.Name] && ev.Has(fsnotify.Remove|fsnotify.Rename) {
		// A watched directory itself went away (a ConfigMap volume
		// unmounted, a directory renamed): watch it again when it is back.
		delete(w.dirs, ev.Name)
		n.dirGone = true
	}
	// Only names that can change what the file reads: its own, its
	// symlink target's, and a ConfigMap's "..data" and "..<timestamp>"
	// entries. Anything else in the directory (the daemon's own log file,
	// an editor's swap file) is not news.
	dir, base := filepath.Split(ev.Name)
	dir = filepath.Clean(dir)
	n.file = w.fileDirs[ev.Name] || (w.fileDirs[dir] && (w.fileNames[base] || strings.HasPrefix(base, ".."))) ||
		(w.setDirs[dir] && spec.IsTopologyFile(base))
	n.key, n.netns = w.nsPaths[ev.Name]
	n.gone = ev.Has(fsnotify.Remove | fsnotify.Rename)
	return n
}

// sync watches the directories that matter now: the file's, the
// directory of its symlink target when that is elsewhere, and the
// directories holding the names of the namespaces in want (key ->
// reference). It reports whether a directory of the file is watched again
// (the file may have changed meanwhile) and whether some directory is
// still missing (retry later).
func (w *dirWatch) sync(want map[string]string) (refile, lost bool) {
	dirs := w.fileWants()
	w.nsPaths = map[string]string{}
	for key, ref := range want {
		if ref == "" || strings.HasPrefix(ref, "/proc/") {
			continue // the current namespace, or one held by a process: no name to watch
		}
		p := nsutil.Path(ref)
		w.nsPaths[p] = key
		dirs[filepath.Dir(p)] = true
	}
	for dir := range dirs {
		if w.dirs[dir] {
			continue
		}
		if err := w.fw.Add(dir); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				w.m.Errors.WithLabelValues(StageWatch).Inc()
				w.log.Error(err, "watch directory", "dir", dir)
			}
			lost = true
			continue
		}
		w.dirs[dir] = true
		refile = refile || w.fileDirs[dir]
	}
	for dir := range w.dirs {
		if !dirs[dir] {
			_ = w.fw.Remove(dir)
			delete(w.dirs, dir)
		}
	}
	return refile, lost
}

// fileWants sets the directories and names of the set, and returns the
// directories to watch for it.
func (w *dirWatch) fileWants() map[string]bool {
	want := map[string]bool{}
	w.fileDirs, w.fileNames, w.setDirs = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, file := range w.files {
		abs, err := filepath.Abs(file)
		if err != nil {
			abs = file
		}
		if st, err := os.Stat(abs); err == nil && st.IsDir() {
			// A directory of the set: its entries come and go, and a
			// ConfigMap volume swaps its ..data link inside it.
			w.fileDirs[abs], w.setDirs[abs], want[abs] = true, true, true
			continue
		}
		w.fileWant(abs, want)
	}
	return want
}

// fileWant adds one file of the set: its directory, and its symlink
// target's when that is elsewhere.
func (w *dirWatch) fileWant(abs string, want map[string]bool) {
	fileDir := filepath.Dir(abs)
	w.fileDirs[fileDir] = true
	w.fileNames[filepath.Base(abs)] = true
	want[fileDir] = true
	if target, err := filepath.EvalSymlinks(abs); err == nil {
		// A ConfigMap's swap happens inside fileDir (..data); a link to
		// another directory needs that directory watched too.
		if td := filepath.Dir(target); td != fileDir && !strings.HasPrefix(td, fileDir+string(filepath.Separator)) {
			w.fileDirs[td] = true
			w.fileNames[filepath.Base(target)] = true
			want[td] = true
		}
	}
}
