package graph

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DOT writes g as a Graphviz digraph: a cluster per node, pods as boxes
// (dashed when open), services as ellipses with dotted edges to their
// backends, and the allowed flows as solid edges labelled with ports.
func (g *Graph) DOT(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, "digraph topology {")
	fmt.Fprintln(b, "  rankdir=LR;")
	fmt.Fprintln(b, `  node [shape=box, fontname="Helvetica"];`)
	for i, n := range g.Nodes {
		fmt.Fprintf(b, "  subgraph cluster_%d {\n    label=%s;\n", i, quote("node "+n.Name+" "+n.Address))
		for _, x := range n.Boxes {
			style := ""
			if x.Open {
				style = ", style=dashed"
			}
			fmt.Fprintf(b, "    %s [label=%s%s];\n", quote(x.ID), quote(x.Label+openNote(x.Open)), style)
		}
		fmt.Fprintln(b, "  }")
	}
	for _, s := range g.Services {
		fmt.Fprintf(b, "  %s [shape=ellipse, label=%s];\n", quote("svc:"+s.Key), quote(s.Label))
		for _, to := range s.Backends {
			fmt.Fprintf(b, "  %s -> %s [style=dotted, arrowhead=none];\n", quote("svc:"+s.Key), quote(to))
		}
	}
	for _, f := range g.Flows {
		fmt.Fprintf(b, "  %s -> %s [label=%s];\n", quote(f.From), quote(f.To), quote(f.label()))
	}
	fmt.Fprintln(b, "}")
	return b.Flush()
}

// Mermaid writes g as a Mermaid flowchart, the form GitHub renders in
// Markdown.
func (g *Graph) Mermaid(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, "flowchart LR")
	ids := map[string]string{}
	id := func(k string) string {
		if v, ok := ids[k]; ok {
			return v
		}
		v := "n" + strconv.Itoa(len(ids))
		ids[k] = v
		return v
	}
	for _, n := range g.Nodes {
		fmt.Fprintf(b, "  subgraph %s[%s]\n", id("node:"+n.Name), mquote("node "+n.Name+" "+n.Address))
		for _, x := range n.Boxes {
			fmt.Fprintf(b, "    %s[%s]\n", id(x.ID), mquote(x.Label+openNote(x.Open)))
		}
		fmt.Fprintln(b, "  end")
	}
	for _, s := range g.Services {
		fmt.Fprintf(b, "  %s([%s])\n", id("svc:"+s.Key), mquote(s.Label))
		for _, to := range s.Backends {
			fmt.Fprintf(b, "  %s -.- %s\n", id("svc:"+s.Key), id(to))
		}
	}
	for _, f := range g.Flows {
		fmt.Fprintf(b, "  %s -->|%s| %s\n", id(f.From), mquote(f.label()), id(f.To))
	}
	return b.Flush()
}

func openNote(open bool) string {
	if open {
		return "\n(open: no ingress policy)"
	}
	return ""
}

// quote makes a DOT string: newlines become \n line breaks.
func quote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
}

// mquote makes a Mermaid label: quoted, with <br/> line breaks.
func mquote(s string) string {
	s = strings.ReplaceAll(s, `"`, "#quot;")
	return `"` + strings.ReplaceAll(s, "\n", "<br/>") + `"`
}
