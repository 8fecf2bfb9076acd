package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// want is one expected error of a testdata/bad file, written on the file's
// first lines as
//
//	# want: LINE:COL: field.path: message substring
//
// with "-" as the path for problems with the file as a whole, and 0:0 when
// no position is known.
type want struct {
	line, col int
	path, msg string
}

var wantRe = regexp.MustCompile(`^# want: (\d+):(\d+): (.+?): (.+)$`)

func readWants(t *testing.T, data []byte) []want {
	t.Helper()
	var wants []want
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "# want:") {
			break
		}
		m := wantRe.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("malformed want line %q", line)
		}
		l, _ := strconv.Atoi(m[1])
		c, _ := strconv.Atoi(m[2])
		path := m[3]
		if path == "-" {
			path = ""
		}
		wants = append(wants, want{l, c, path, m[4]})
	}
	return wants
}

func (w want) matches(e *Error) bool {
	return e.Line == w.line && e.Column == w.col && e.Path == w.path && strings.Contains(e.Msg, w.msg)
}

func (w want) String() string { return fmt.Sprintf("%d:%d: %s: %s", w.line, w.col, w.path, w.msg) }

// TestBadFiles loads every malformed topology and checks that exactly the
// wanted errors are reported, at the wanted positions: no more (no
// cascades), no fewer (all at once).
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("want at least 30 malformed files, have %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wants := readWants(t, data)
			if len(wants) == 0 {
				t.Fatal("file has no '# want:' line")
			}
			r, err := LoadFiles(f)
			if err == nil {
				t.Fatalf("loaded without error: %d pods", len(r.Pods))
			}
			if r != nil {
				t.Error("a Resolved came back with an error")
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, not *Errors: %v", err, err)
			}
			used := make([]bool, len(errs.List))
			for _, w := range wants {
				found := false
				for i, e := range errs.List {
					if !used[i] && w.matches(e) {
						used[i], found = true, true
						break
					}
				}
				if !found {
					t.Errorf("missing error %s", w)
				}
			}
			for i, e := range errs.List {
				if !used[i] {
					t.Errorf("unexpected error %d:%d: %s: %s", e.Line, e.Column, e.Path, e.Msg)
				}
				if e.File != f {
					t.Errorf("error names file %q, want %q", e.File, f)
				}
			}
		})
	}
}

func TestGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../examples/*.yaml")
	for _, f := range append(files, more...) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r, err := LoadFiles(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Nodes) == 0 {
				t.Error("no nodes")
			}
			for _, p := range r.Pods {
				if !p.IP.IsValid() || p.Netns == "" || p.Mode == "" || p.Key != p.Namespace+"/"+p.Name {
					t.Errorf("pod %s not fully resolved: %+v", p.Key, p)
				}
			}
		})
	}
}

// sourcesOf reads the files at paths, failing t when it cannot.
func sourcesOf(t testing.TB, paths ...string) []Source {
	t.Helper()
	srcs, err := ReadFiles(DefaultMaxFileSize, paths...)
	if err != nil {
		t.Fatal(err)
	}
	return srcs
}

// parseFile decodes the file at path.
func parseFile(path string) (*Topology, *Positions, error) {
	srcs, err := ReadFiles(DefaultMaxFileSize, path)
	if err != nil {
		return nil, nil, err
	}
	return Parse(srcs[0].Name, srcs[0].Data)
}
