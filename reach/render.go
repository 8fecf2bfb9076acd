package reach

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// MarkdownGroups is the most reachability groups the Markdown output
// shows, so that a pull-request comment stays within what forges accept
// (GitHub: 65,536 characters); the others are counted.
const MarkdownGroups = 200

var symbols = map[string]string{Create: "+", Update: "~", Delete: "-"}

// Summary is the last line of the text output: "No changes." or the counts.
func (d *Diff) Summary() string {
	if d.Empty() {
		return "No changes."
	}
	n := map[string]int{}
	for _, o := range d.Objects {
		n[o.Action]++
	}
	return fmt.Sprintf("Diff: %d to add, %d to change, %d to destroy; backends changed on %s; verdict changed on %s; plans change on %s.",
		n[Create], n[Update], n[Delete], plural(len(d.Backends), "service port"), plural(d.Connections, "connection"),
		plural(d.ChangedNodes(), "node"))
}

// plural counts things: "1 connection", "2 connections".
func plural(n int, thing string) string { return strconv.Itoa(n) + " " + noun(n, thing) }

func noun(n int, thing string) string {
	if n == 1 {
		return thing
	}
	return thing + "s"
}

func objectLine(o ObjectChange) string {
	s := symbols[o.Action] + " " + o.Kind + " " + o.Key
	if len(o.Fields) > 0 {
		s += ": " + strings.Join(o.Fields, ", ")
	}
	return s
}

func backendLine(b BackendChange) string {
	var parts []string
	for _, g := range b.Gained {
		parts = append(parts, "+"+g)
	}
	for _, l := range b.Lost {
		parts = append(parts, "-"+l)
	}
	via := ""
	if len(b.Frontends) > 0 {
		via = " (also " + strings.Join(b.Frontends, ", ") + ")"
	}
	return fmt.Sprintf("service %s %d/%s%s: %s", b.Service, b.Port, b.Protocol, via, strings.Join(parts, " "))
}

func (g Group) target() string {
	if g.ToKind == "service" {
		return "service " + g.To
	}
	return "namespace " + g.To
}

func (g Group) examples() string {
	var ex []string
	for _, c := range g.Examples {
		ex = append(ex, c.From+" -> "+c.To)
	}
	return strings.Join(ex, ", ")
}

// WriteText writes the diff for a terminal.
func (d *Diff) WriteText(w io.Writer) error {
	var b strings.Builder
	if len(d.Objects) > 0 {
		b.WriteString("Objects:\n")
		for _, o := range d.Objects {
			b.WriteString("  " + objectLine(o) + "\n")
		}
	}
	if len(d.Backends) > 0 {
		b.WriteString("Service backends:\n")
		for _, s := range d.Backends {
			b.WriteString("  ~ " + backendLine(s) + "\n")
		}
	}
	if len(d.Groups) > 0 {
		b.WriteString("Reachability (connections whose verdict changes, by source namespace and target):\n")
		for _, g := range d.Groups {
			fmt.Fprintf(&b, "  %s -> %s %d/%s: %s -> %s, %s (e.g. %s)\n",
				g.FromNamespace, g.target(), g.Port, g.Protocol, g.Before, g.After, plural(g.Count, "connection"), g.examples())
		}
	}
	if d.ChangedNodes() > 0 {
		b.WriteString("Node plans (each node moved from OLD to NEW, offline):\n")
		writeNodeTable(&b, d.NodePlans)
	}
	if d.NodePlansSkipped != "" {
		b.WriteString("Node plans: not computed (" + d.NodePlansSkipped + ").\n")
	}
	if !d.Empty() {
		b.WriteString("\n")
	}
	b.WriteString(d.Summary() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the diff as one indented JSON document.
func (d *Diff) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}

// WriteMarkdown writes the diff for a pull-request comment.
func (d *Diff) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("### netreconcile diff\n\n" + d.Summary() + "\n")
	if len(d.Objects) > 0 {
		b.WriteString("\n#### Objects\n\n| | Kind | Key | Changed |\n|---|---|---|---|\n")
		for _, o := range d.Objects {
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s |\n", symbols[o.Action], o.Kind, o.Key, cellText(strings.Join(o.Fields, ", ")))
		}
	}
	if len(d.Backends) > 0 {
		b.WriteString("\n#### Service backends\n\n| Service | Port | Gained | Lost |\n|---|---|---|---|\n")
		for _, s := range d.Backends {
			fmt.Fprintf(&b, "| `%s` | %d/%s | %s | %s |\n", s.Service, s.Port, s.Protocol,
				cellText(strings.Join(s.Gained, ", ")), cellText(strings.Join(s.Lost, ", ")))
		}
	}
	if len(d.Groups) > 0 {
		b.WriteString("\n#### Reachability\n\n| From namespace | To | Port | Change | Connections | Examples |\n|---|---|---|---|---:|---|\n")
		for _, g := range d.Groups[:min(len(d.Groups), MarkdownGroups)] {
			fmt.Fprintf(&b, "| %s | %s | %d/%s | %s → %s | %d | %s |\n", g.FromNamespace, g.target(), g.Port, g.Protocol,
				g.Before, g.After, g.Count, cellText(g.examples()))
		}
		if n := len(d.Groups) - MarkdownGroups; n > 0 {
			fmt.Fprintf(&b, "\n… and %d more %s (`netreconcile diff` lists them all).\n", n, noun(n, "group"))
		}
	}
	if d.ChangedNodes() > 0 {
		b.WriteString("\n#### Node plans\n\n| Node | Add | Change | Destroy |\n|---|---:|---:|---:|\n")
		for _, p := range d.NodePlans {
			if !p.Empty() {
				fmt.Fprintf(&b, "| `%s` | %d | %d | %d |\n", p.Node, p.Summary.Add, p.Summary.Change, p.Summary.Destroy)
			}
		}
		if n := len(d.NodePlans) - d.ChangedNodes(); n > 0 {
			fmt.Fprintf(&b, "\n%s unchanged.\n", plural(n, "node"))
		}
	}
	if d.NodePlansSkipped != "" {
		b.WriteString("\nNode plans: not computed (" + d.NodePlansSkipped + ").\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeNodeTable writes the nodes whose plan has changes, one a line
// under a header, then how many nodes have none.
func writeNodeTable(b *strings.Builder, plans []NodePlan) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  node\tadd\tchange\tdestroy")
	unchanged := 0
	for _, p := range plans {
		if p.Empty() {
			unchanged++
			continue
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\n", p.Node, p.Summary.Add, p.Summary.Change, p.Summary.Destroy)
	}
	tw.Flush()
	fmt.Fprintf(b, "  %s unchanged\n", plural(unchanged, "node"))
}

// cellText keeps a table cell on one row of its table.
func cellText(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// WriteDOT writes the reachability changes as a Graphviz graph: a node per
// namespace and per service, an edge per group, green for connections
// that become allowed and red for those that become denied.
func (d *Diff) WriteDOT(w io.Writer) error {
	var b strings.Builder
	b.WriteString("digraph netreconcile_diff {\n  rankdir=LR;\n  node [shape=box];\n")
	seen := map[string]bool{}
	node := func(id, shape string) {
		if !seen[id] {
			seen[id] = true
			fmt.Fprintf(&b, "  %s [shape=%s];\n", strconv.Quote(id), shape)
		}
	}
	for _, g := range d.Groups {
		node(g.FromNamespace, "box")
		if g.ToKind == "service" {
			node(g.To, "ellipse")
		} else {
			node(g.To, "box")
		}
	}
	for _, g := range d.Groups {
		color := "red"
		if g.After == Allowed {
			color = "darkgreen"
		}
		label := fmt.Sprintf("%d/%s %s→%s (%d)", g.Port, g.Protocol, g.Before, g.After, g.Count)
		fmt.Fprintf(&b, "  %s -> %s [label=%s, color=%s, fontcolor=%s];\n",
			strconv.Quote(g.FromNamespace), strconv.Quote(g.To), strconv.Quote(label), color, color)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
