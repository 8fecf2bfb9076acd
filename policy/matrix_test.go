package policy

import (
	"errors"
	"testing"
)

func TestFormatMatrixRoundTrip(t *testing.T) {
	names := []string{"x/a", "x/b", "10.1.2.3"}
	m := [][]bool{{true, false, true}, {false, true, true}, {true, true, false}}
	got, err := FormatMatrix(names, m)
	if err != nil {
		t.Fatal(err)
	}
	want := `-        x/a x/b 10.1.2.3
x/a      .   X   .
x/b      X   .   .
10.1.2.3 .   .   X
`
	if got != want {
		t.Errorf("FormatMatrix:\n%s\nwant:\n%s", got, want)
	}
	names2, m2, err := ParseMatrix(got)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(names2, names) {
		t.Errorf("names %v, want %v", names2, names)
	}
	for i := range m {
		for j := range m {
			if m[i][j] != m2[i][j] {
				t.Errorf("cell %d,%d = %v, want %v", i, j, m2[i][j], m[i][j])
			}
		}
	}
}

func TestFormatDiff(t *testing.T) {
	names := []string{"x/a", "x/b"}
	exp := [][]bool{{true, true}, {false, true}}
	obs := [][]bool{{true, false}, {true, true}}
	got, diffs, err := FormatDiff(names, exp, obs)
	if err != nil {
		t.Fatal(err)
	}
	want := `-   x/a x/b
x/a .   X*
x/b .*  .
2 of 4 pairs differ from expected (* marks them; cells show what was observed):
  x/a -> x/b: expected allowed, observed denied
  x/b -> x/a: expected denied, observed allowed
`
	if got != want {
		t.Errorf("FormatDiff:\n%s\nwant:\n%s", got, want)
	}
	if len(diffs) != 2 || diffs[0] != (Disagreement{From: "x/a", To: "x/b", Expected: true}) {
		t.Errorf("diffs = %+v", diffs)
	}

	got, diffs, err = FormatDiff(names, exp, exp)
	if err != nil || diffs != nil {
		t.Fatalf("same matrices: %v %v", diffs, err)
	}
	if want := "-   x/a x/b\nx/a .   .\nx/b X   .\nobserved matches expected (4 pairs)\n"; got != want {
		t.Errorf("FormatDiff without differences:\n%q\nwant:\n%q", got, want)
	}

	if _, _, err := FormatDiff(names, exp, [][]bool{{true}}); !errors.Is(err, ErrBadMatrix) {
		t.Errorf("shape mismatch: err %v, want ErrBadMatrix", err)
	}
}

func TestParseMatrixErrors(t *testing.T) {
	for name, text := range map[string]string{
		"empty":          "\n\n",
		"corner only":    "-\n",
		"bad cell":       "- a b\na . x\nb . .\n",
		"short row":      "- a b\na .\nb . .\n",
		"wrong row name": "- a b\nb . .\na . .\n",
		"missing row":    "- a b\na . .\n",
		"extra row":      "- a\na .\nb .\n",
	} {
		if _, _, err := ParseMatrix(text); !errors.Is(err, ErrBadMatrix) {
			t.Errorf("%s: err %v, want ErrBadMatrix", name, err)
		}
	}
	// The corner is optional.
	names, m, err := ParseMatrix("a b\na . X\nb X .")
	if err != nil || !equal(names, []string{"a", "b"}) || m[0][1] || !m[1][1] {
		t.Errorf("no corner: %v %v %v", names, m, err)
	}
}

// Matrix takes addresses beside pod keys and fails closed on unknown ones.
func TestMatrixEndpoints(t *testing.T) {
	r := loadModel(t, `
  - name: deny-all
    namespace: x
    spec: {podSelector: {}, policyTypes: [Ingress]}
`, nil)
	names := []string{"x/a", "192.0.2.1", "x/nope"}
	got := Matrix(r, names, 80, "TCP")
	want := grid3(t, `
-         x/a 192.0.2.1 x/nope
x/a       .   .         X
192.0.2.1 X   .         X
x/nope    X   X         X
`)
	if _, diffs, _ := FormatDiff(names, want, got); len(diffs) > 0 {
		t.Errorf("Matrix disagrees: %v", diffs)
	}
}

func grid3(t *testing.T, text string) [][]bool {
	t.Helper()
	_, m, err := ParseMatrix(text)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
