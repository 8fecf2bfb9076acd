package plan

import (
	"fmt"
	"io"
	"strings"

	"github.com/netreconcile/netreconcile/state"
)

// WriteText renders the plan for humans, like terraform's plan output.
func (p *Plan) WriteText(w io.Writer) {
	if p.Empty() {
		fmt.Fprintf(w, "No changes. Node %s matches the file.\n", p.Node)
		return
	}
	used := map[Action]bool{}
	for _, c := range p.Changes {
		used[c.Action] = true
	}
	fmt.Fprintln(w, "netreconcile uses these symbols:")
	for _, a := range []Action{Create, Update, Delete, Replace} {
		if used[a] {
			fmt.Fprintf(w, "  %-3s %s\n", symbols[a], a)
		}
	}
	fmt.Fprintf(w, "\nnetreconcile will perform these actions on node %s:\n", p.Node)
	owner := "\x00"
	for _, c := range p.Changes {
		if c.Owner != owner {
			owner = c.Owner
			label := OwnerLabel(owner)
			if c.OwnerRemoved {
				label += " (removed from the file)"
			}
			fmt.Fprintf(w, "\n  # %s\n", label)
		}
		fmt.Fprintf(w, "  %-3s %s %s", symbols[c.Action], c.Kind, c.Key)
		switch {
		case c.ImpliedBy != "":
			fmt.Fprintf(w, " (with netns %s)", c.ImpliedBy)
		case c.Action == Create:
			fmt.Fprintf(w, " %s", attrText(c.Attrs))
		}
		if c.Reason != "" {
			fmt.Fprintf(w, " # %s", c.Reason)
		}
		fmt.Fprintln(w)
		for _, ch := range c.Changes {
			note := ""
			if c.Desired != nil && c.Desired.Immutable(ch.Name) {
				note = " # forces replacement"
			}
			if ch.Name == "backends" || ch.Name == "rules" {
				fmt.Fprintf(w, "      ~ %s: %s\n", ch.Name, listDiff(ch.From, ch.To))
				continue
			}
			fmt.Fprintf(w, "      ~ %s: %s -> %s%s\n", ch.Name, quoteEmpty(ch.From), quoteEmpty(ch.To), note)
		}
	}
	if len(p.Adopted) > 0 {
		fmt.Fprintln(w)
	}
	for _, a := range p.Adopted {
		fmt.Fprintf(w, "  # pod %s adopts existing netns %q (not created by netreconcile: used as it is, never deleted)\n", a.Pod, a.Netns)
	}
	fmt.Fprintf(w, "\nPlan: %d to add, %d to change, %d to destroy.\n", p.Summary.Add, p.Summary.Change, p.Summary.Destroy)
}

// OwnerLabel names an owner in the file's terms: "pod x/a" for
// "pod/x/a", "service x/web", "peer n2"; "(no owner)" for none.
func OwnerLabel(owner string) string {
	if owner == "" {
		return "(no owner)"
	}
	return strings.Replace(owner, "/", " ", 1)
}

func attrText(as []state.Attr) string {
	if len(as) == 0 {
		return ""
	}
	parts := make([]string, 0, len(as))
	for _, a := range as {
		if a.Value == "" || a.Value == "false" {
			continue
		}
		parts = append(parts, a.Name+"="+a.Value)
	}
	return "(" + strings.Join(parts, " ") + ")"
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// listDiff renders a change of a comma-separated list as added and
// removed items ("+10.244.2.10:80 -10.244.1.5:80").
func listDiff(from, to string) string {
	have := map[string]bool{}
	for _, x := range strings.Split(from, ",") {
		if x != "" {
			have[x] = true
		}
	}
	var out []string
	want := map[string]bool{}
	for _, x := range strings.Split(to, ",") {
		if x == "" {
			continue
		}
		want[x] = true
		if !have[x] {
			out = append(out, "+"+x)
		}
	}
	for _, x := range strings.Split(from, ",") {
		if x != "" && !want[x] {
			out = append(out, "-"+x)
		}
	}
	if len(out) == 0 {
		return "(reordered)"
	}
	return strings.Join(out, " ")
}
