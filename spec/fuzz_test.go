package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the decoder and the validator. The
// file is user input: whatever it holds, they must not panic, and every
// failure must be an *Errors whose entries all say something (or, for
// the few non-content failures, a plain error with a message).
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("<<: {<<: {kind: x}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, pos, err := Parse("fuzz.yaml", data)
		checkErr(t, err)
		if top == nil {
			if err == nil {
				t.Fatal("no topology and no error")
			}
			return
		}
		if pos == nil {
			t.Fatal("a topology without positions")
		}
		r, err := Resolve(top, pos)
		checkErr(t, err)
		if err == nil && r == nil {
			t.Fatal("no Resolved and no error")
		}
		if err != nil && r != nil {
			t.Fatal("a Resolved with an error")
		}
	})
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		if err.Error() == "" {
			t.Fatalf("plain error %T without a message", err)
		}
		return
	}
	if len(errs.List) == 0 {
		t.Fatal("empty *Errors returned as an error")
	}
	for _, e := range errs.List {
		if e.Msg == "" {
			t.Fatalf("error without a message: %#v", e)
		}
		if e.Err == nil {
			t.Fatalf("error matches no sentinel: %v", e)
		}
		if e.Line < 0 || e.Column < 0 {
			t.Fatalf("negative position: %v", e)
		}
	}
}
