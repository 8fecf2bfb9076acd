package policy

import (
	"bufio"
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/netreconcile/netreconcile/spec"
)

// Matrix evaluates every ordered pair of endpoints on one port and
// protocol: m[i][j] is whether endpoints[i] may connect to endpoints[j].
// Entries are pod keys (namespace/name) or IP addresses; an entry that
// names no pod, or a bad port or protocol, gives false for its pairs, so
// check the inputs first (ParseEndpoint, ParsePort) when that matters.
func Matrix(r *spec.Resolved, endpoints []string, port int, proto string) [][]bool {
	e := newEvaluator(r)
	eps := make([]Endpoint, len(endpoints))
	for i, s := range endpoints {
		if ip, err := netip.ParseAddr(s); err == nil {
			eps[i] = AddrEndpoint(ip)
		} else {
			eps[i] = PodEndpoint(s)
		}
	}
	m := make([][]bool, len(eps))
	for i := range eps {
		m[i] = make([]bool, len(eps))
		for j := range eps {
			m[i][j] = e.evaluate(eps[i], eps[j], port, proto).Allowed
		}
	}
	return m
}

// Cells of a rendered matrix, as in the Kubernetes e2e reachability tables.
const (
	cellAllowed = "."
	cellDenied  = "X"
	// cellDiffers is appended to an observed cell that disagrees with the
	// expected one.
	cellDiffers = "*"
	corner      = "-"
)

func cell(ok bool) string {
	if ok {
		return cellAllowed
	}
	return cellDenied
}

// FormatMatrix renders m like the Kubernetes e2e reachability tables: a
// header row of destinations, one row per source, `.` allowed and `X`
// denied. ParseMatrix reads it back, so that tests can write expected
// tables literally.
func FormatMatrix(names []string, m [][]bool) (string, error) {
	if err := checkShape(names, m); err != nil {
		return "", fmt.Errorf("format matrix: %w", err)
	}
	return render(names, func(i, j int) string { return cell(m[i][j]) }), nil
}

// Disagreement is one pair on which an observed matrix differs from the
// expected one.
type Disagreement struct {
	From, To           string
	Expected, Observed bool
}

// String prints `x/a -> y/b: expected allowed, observed denied`.
func (d Disagreement) String() string {
	word := func(ok bool) string {
		if ok {
			return "allowed"
		}
		return "denied"
	}
	return fmt.Sprintf("%s -> %s: expected %s, observed %s", d.From, d.To, word(d.Expected), word(d.Observed))
}

// Compare lists the pairs on which observed differs from expected, row by
// row.
func Compare(names []string, expected, observed [][]bool) ([]Disagreement, error) {
	if err := checkShape(names, expected); err != nil {
		return nil, fmt.Errorf("compare expected matrix: %w", err)
	}
	if err := checkShape(names, observed); err != nil {
		return nil, fmt.Errorf("compare observed matrix: %w", err)
	}
	var out []Disagreement
	for i := range names {
		for j := range names {
			if expected[i][j] != observed[i][j] {
				out = append(out, Disagreement{From: names[i], To: names[j], Expected: expected[i][j], Observed: observed[i][j]})
			}
		}
	}
	return out, nil
}

// FormatDiff renders the observed matrix with every cell that disagrees
// with the expected one marked `*` (`X*`: denied but expected allowed;
// `.*`: allowed but expected denied), then a summary line and one line per
// disagreement. It also returns the disagreements for the caller's exit
// code.
func FormatDiff(names []string, expected, observed [][]bool) (string, []Disagreement, error) {
	diffs, err := Compare(names, expected, observed)
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	b.WriteString(render(names, func(i, j int) string {
		s := cell(observed[i][j])
		if observed[i][j] != expected[i][j] {
			s += cellDiffers
		}
		return s
	}))
	total := len(names) * len(names)
	if len(diffs) == 0 {
		fmt.Fprintf(&b, "observed matches expected (%d pairs)\n", total)
		return b.String(), nil, nil
	}
	fmt.Fprintf(&b, "%d of %d pairs differ from expected (* marks them; cells show what was observed):\n", len(diffs), total)
	for _, d := range diffs {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String(), diffs, nil
}

func render(names []string, at func(i, j int) string) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, corner+"\t"+strings.Join(names, "\t"))
	for i, from := range names {
		row := make([]string, len(names))
		for j := range names {
			row[j] = at(i, j)
		}
		fmt.Fprintln(tw, from+"\t"+strings.Join(row, "\t"))
	}
	_ = tw.Flush() // writing to a strings.Builder cannot fail
	return b.String()
}

func checkShape(names []string, m [][]bool) error {
	if len(m) != len(names) {
		return fmt.Errorf("%w: %d rows for %d names", ErrBadMatrix, len(m), len(names))
	}
	for i, row := range m {
		if len(row) != len(names) {
			return fmt.Errorf("%w: row %s has %d cells for %d names", ErrBadMatrix, names[i], len(row), len(names))
		}
	}
	return nil
}

// ParseMatrix reads a table in FormatMatrix's form: a header line (an
// optional `-` corner, then the names), then one line per name in the
// same order, starting with the name, holding `.` or `X` cells. Blank
// lines are skipped and spacing is free, so tables can be written by hand.
func ParseMatrix(text string) ([]string, [][]bool, error) {
	var names []string
	var m [][]bool
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if names == nil {
			if f[0] == corner {
				f = f[1:]
			}
			if len(f) == 0 {
				return nil, nil, fmt.Errorf("parse matrix: line %d: %w: header has no names", line, ErrBadMatrix)
			}
			names = f
			continue
		}
		i := len(m)
		if i >= len(names) {
			return nil, nil, fmt.Errorf("parse matrix: line %d: %w: more rows than the %d names", line, ErrBadMatrix, len(names))
		}
		if f[0] != names[i] {
			return nil, nil, fmt.Errorf("parse matrix: line %d: %w: row %q where %q was expected", line, ErrBadMatrix, f[0], names[i])
		}
		if len(f)-1 != len(names) {
			return nil, nil, fmt.Errorf("parse matrix: line %d: %w: %d cells for %d names", line, ErrBadMatrix, len(f)-1, len(names))
		}
		row := make([]bool, len(names))
		for j, c := range f[1:] {
			switch c {
			case cellAllowed:
				row[j] = true
			case cellDenied:
			default:
				return nil, nil, fmt.Errorf("parse matrix: line %d: %w: cell %q (want %s or %s)", line, ErrBadMatrix, c, cellAllowed, cellDenied)
			}
		}
		m = append(m, row)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("parse matrix: %w", err)
	}
	if names == nil {
		return nil, nil, fmt.Errorf("parse matrix: %w: empty", ErrBadMatrix)
	}
	if len(m) != len(names) {
		return nil, nil, fmt.Errorf("parse matrix: %w: %d rows for %d names", ErrBadMatrix, len(m), len(names))
	}
	return names, m, nil
}
