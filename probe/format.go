package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText prints one compact table per port (rows are sources,
// columns destinations, numbered as the rows: "." reached, "X" not, "*"
// where that differs from the policies), then the services table, the
// disagreements, the notes and a summary.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	bad := 0
	for _, m := range r.Matrices {
		fmt.Fprintf(&b, "%s  (from row to column; . reached, X not, * not as the policies say)\n", m.Target)
		table(&b, r.Pods, len(r.Pods), func(i, j int) string {
			s := cellText(m.Observed[i][j])
			if m.Observed[i][j] != m.Expected[i][j] {
				s += "*"
			}
			return s
		})
		for _, d := range m.Disagreements {
			b.WriteString("  " + d.String() + "\n")
		}
		bad += len(m.Disagreements)
		b.WriteString("\n")
	}
	if sm := r.Services; sm != nil {
		b.WriteString("through clusterIPs  (from row to service; ~: the policies allow some backends, not judged)\n")
		for k, t := range sm.Targets {
			fmt.Fprintf(&b, "  %2d %s (%s)\n", k+1, t, t.IP)
		}
		table(&b, r.Pods, len(sm.Targets), func(i, k int) string {
			s := cellText(sm.Observed[i][k])
			switch e := sm.Expected[i][k]; {
			case e == expectEither:
				s += "~"
			case (e == expectAllowed) != sm.Observed[i][k]:
				s += "*"
			}
			return s
		})
		for _, d := range sm.Disagreements {
			b.WriteString("  " + d + "\n")
		}
		bad += len(sm.Disagreements)
		b.WriteString("\n")
	}
	for _, n := range r.Notes {
		b.WriteString("note: " + n + "\n")
	}
	svcs := 0
	if r.Services != nil {
		svcs = len(r.Services.Targets)
	}
	if bad == 0 {
		fmt.Fprintf(&b, "Probe: %d ports, %d pods, %d service ports: every pair as expected.\n", len(r.Matrices), len(r.Pods), svcs)
	} else {
		fmt.Fprintf(&b, "Probe: %d ports, %d pods, %d service ports: %d pairs differ from expected.\n", len(r.Matrices), len(r.Pods), svcs, bad)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func cellText(ok bool) string {
	if ok {
		return "."
	}
	return "X"
}

// table writes rows numbered and named, and cols numbered columns of
// at most two characters each: narrow whatever the names.
func table(b *strings.Builder, rows []string, cols int, at func(i, j int) string) {
	width := 0
	for _, n := range rows {
		width = max(width, len(n))
	}
	fmt.Fprintf(b, "  %*s", width+3, "")
	for j := range cols {
		fmt.Fprintf(b, " %2d", j+1)
	}
	b.WriteString("\n")
	for i, n := range rows {
		fmt.Fprintf(b, "  %2d %-*s", i+1, width, n)
		for j := range cols {
			fmt.Fprintf(b, " %2s", at(i, j))
		}
		b.WriteString("\n")
	}
}

// jsonResult is the -o json shape: matrices as rows of "." (reached) and
// "X" (not), in the order of pods.
type jsonResult struct {
	FormatVersion string        `json:"format_version"`
	Pods          []string      `json:"pods"`
	Matrices      []jsonMatrix  `json:"matrices"`
	Services      *jsonServices `json:"services,omitempty"`
	Agree         bool          `json:"agree"`
	Notes         []string      `json:"notes,omitempty"`
}

// jsonServices: rows per pod, one character per service target: "."
// reached, "X" not; expected "~" where the policies allow some backends.
type jsonServices struct {
	Targets       []ServiceTarget `json:"targets"`
	Expected      []string        `json:"expected"`
	Observed      []string        `json:"observed"`
	Disagreements []string        `json:"disagreements"`
}

type jsonMatrix struct {
	Target
	Expected      []string `json:"expected"`
	Observed      []string `json:"observed"`
	Disagreements []string `json:"disagreements"`
}

// FormatVersion versions the JSON shape of a probe result.
const FormatVersion = "1.0"

// WriteJSON prints the result as JSON (see jsonResult).
func (r *Result) WriteJSON(w io.Writer) error {
	out := jsonResult{FormatVersion: FormatVersion, Pods: r.Pods, Matrices: []jsonMatrix{}, Agree: r.Agree(), Notes: r.Notes}
	rows := func(m [][]bool) []string {
		s := make([]string, len(m))
		for i, row := range m {
			var b strings.Builder
			for _, ok := range row {
				if ok {
					b.WriteByte('.')
				} else {
					b.WriteByte('X')
				}
			}
			s[i] = b.String()
		}
		return s
	}
	for _, m := range r.Matrices {
		jm := jsonMatrix{Target: m.Target, Expected: rows(m.Expected), Observed: rows(m.Observed), Disagreements: []string{}}
		for _, d := range m.Disagreements {
			jm.Disagreements = append(jm.Disagreements, d.String())
		}
		out.Matrices = append(out.Matrices, jm)
	}
	if sm := r.Services; sm != nil {
		js := &jsonServices{Targets: sm.Targets, Observed: rows(sm.Observed), Disagreements: append([]string{}, sm.Disagreements...)}
		for _, row := range sm.Expected {
			var b strings.Builder
			for _, e := range row {
				b.WriteString([]string{"X", ".", "~"}[e])
			}
			js.Expected = append(js.Expected, b.String())
		}
		out.Services = js
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
