package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/netreconcile/netreconcile/policy"
)

// WriteText prints, for every target, the expected matrix (from the
// policies) beside the observed one, where `*` marks the cells that
// disagree, then the disagreements one per line, and the notes.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, m := range r.Matrices {
		exp, err := policy.FormatMatrix(r.Pods, m.Expected)
		if err != nil {
			return err
		}
		obs, _, err := policy.FormatDiff(r.Pods, m.Expected, m.Observed)
		if err != nil {
			return err
		}
		left := strings.Split(strings.TrimRight(exp, "\n"), "\n")
		right := strings.Split(strings.TrimRight(obs, "\n"), "\n")
		width := len("expected")
		for _, l := range left {
			width = max(width, len(l))
		}
		fmt.Fprintf(&b, "%s\n", m.Target)
		fmt.Fprintf(&b, "%-*s    %s\n", width, "expected", "observed")
		for i, l := range right {
			if i < len(left) {
				fmt.Fprintf(&b, "%-*s    %s\n", width, left[i], l)
			} else {
				fmt.Fprintf(&b, "%s\n", l)
			}
		}
		b.WriteString("\n")
	}
	for _, n := range r.Notes {
		b.WriteString("note: " + n + "\n")
	}
	bad := 0
	for _, m := range r.Matrices {
		bad += len(m.Disagreements)
	}
	if bad == 0 {
		fmt.Fprintf(&b, "Probe: %d ports, %d pods: every pair as expected.\n", len(r.Matrices), len(r.Pods))
	} else {
		fmt.Fprintf(&b, "Probe: %d ports, %d pods: %d pairs differ from expected.\n", len(r.Matrices), len(r.Pods), bad)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonResult is the -o json shape: matrices as rows of "." (reached) and
// "X" (not), in the order of pods.
type jsonResult struct {
	FormatVersion string       `json:"format_version"`
	Pods          []string     `json:"pods"`
	Matrices      []jsonMatrix `json:"matrices"`
	Agree         bool         `json:"agree"`
	Notes         []string     `json:"notes,omitempty"`
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
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
