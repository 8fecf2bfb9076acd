package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// monitorCmd streams the packets the node's datapath drops.
func monitorCmd(g *globals) *cobra.Command {
	var files []string
	var node, output string
	cmd := &cobra.Command{
		Use:   "monitor [-f FILE] [--node N] [-o text|json]",
		Short: "Stream the packets the node's datapath drops, as they are dropped: who, to whom, and why",
		Long: `Monitor prints a line for every packet the node's eBPF datapath drops while it
runs: policy denials (which side, egress or ingress, decided), forged sources,
connections from outside to a service with no backend here. Each line has the
time, the reason, the connection as the pods see it (after a clusterIP is
translated to its backend) and where it was seen. With -f the addresses are
named after the file's pods and nodes, and a policy drop says which policies
isolate that side. Ctrl-C ends it.

The datapath writes events only while a monitor runs (it keeps a deadline a
few seconds ahead; nothing is written otherwise), to a 256 KiB ring: under a
flood some events are lost, never the packets' fate changed. Run one monitor
per node. Per-pod drop counters are in show and in the watch daemon's metrics.`,
		Example: `  netreconcile monitor -f topology.yaml --node node-a
  netreconcile monitor --node node-a -o json | jq .`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r *spec.Resolved
			if len(files) > 0 {
				var err error
				if r, _, err = g.load(files, false); err != nil {
					return err
				}
			}
			n := newNamer(r)
			out := cmd.OutOrStdout()
			if output == "text" {
				fmt.Fprintf(cmd.ErrOrStderr(), "Monitoring drops on node %s (Ctrl-C ends it)...\n", node)
			}
			return datapath.Monitor(cmd.Context(), g.engine(node).Cfg.BPFFS, func(ev datapath.DropEvent) {
				writeDrop(out, output, n.describe(ev))
			}, func(lost uint64) {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %d drop events lost: the datapath dropped faster than this monitor read (the packets were dropped all the same)\n", lost)
			})
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "topology file, directory or -, repeatable: name addresses after its pods and nodes")
	nodeFlag(cmd, &node)
	// A stream: text or JSON lines (outputFlag's yaml waits for the end).
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json (one object per line)")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if output != "text" && output != "json" {
			return fmt.Errorf("-o %q: want text or json", output)
		}
		return run(cmd, args)
	}
	return cmd
}

// dropLine is one event as printed (-o json: one object per line).
type dropLine struct {
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Protocol string    `json:"protocol"`
	Seen     string    `json:"seen"`
	Pod      string    `json:"pod,omitempty"` // the local pod charged
	// Policies isolating the side that denied (with -f).
	IsolatedBy []string `json:"isolated_by,omitempty"`
}

func writeDrop(w io.Writer, output string, l dropLine) {
	if output == "json" {
		_ = json.NewEncoder(w).Encode(l)
		return
	}
	s := fmt.Sprintf("%s  DROP %-15s %s -> %s %s  (%s", l.Time.Format("15:04:05.000"), l.Reason, l.From, l.To, l.Protocol, l.Seen)
	if l.Pod != "" {
		s += ", " + l.Pod
	}
	if len(l.IsolatedBy) > 0 {
		s += "; isolated by " + strings.Join(l.IsolatedBy, ", ")
	}
	fmt.Fprintln(w, s+")")
}

// namer names addresses after the file's pods and nodes.
type namer struct {
	judge *policy.Judge // the file indexed once: events can come in floods
	names map[netip.Addr]string
}

func newNamer(r *spec.Resolved) *namer {
	n := &namer{names: map[netip.Addr]string{}}
	if r == nil {
		return n
	}
	n.judge = policy.NewJudge(r)
	for _, p := range r.Pods {
		n.names[p.IP] = p.Key
	}
	for _, nd := range r.Nodes {
		n.names[nd.Address.Addr()] = "node " + nd.Name
	}
	for _, s := range r.Services {
		n.names[s.ClusterIP] = "service " + s.Key
	}
	return n
}

func (n *namer) addr(ap netip.AddrPort) string {
	if name, ok := n.names[ap.Addr()]; ok {
		return name + " " + ap.String()
	}
	return ap.String()
}

func (n *namer) describe(ev datapath.DropEvent) dropLine {
	l := dropLine{Time: ev.Time, Reason: ev.Reason.String(), From: n.addr(ev.Src), To: n.addr(ev.Dst),
		Protocol: protoName(ev.Proto), Seen: ev.Hook}
	if ev.Pod.IsValid() {
		l.Pod = n.names[ev.Pod]
		if l.Pod == "" {
			l.Pod = ev.Pod.String()
		}
	}
	if n.judge != nil && (ev.Reason == datapath.DropEgress || ev.Reason == datapath.DropIngress) {
		v := n.judge.Evaluate(policy.AddrEndpoint(ev.Src.Addr()), policy.AddrEndpoint(ev.Dst.Addr()), int(ev.Dst.Port()), l.Protocol)
		side := v.Ingress
		if ev.Reason == datapath.DropEgress {
			side = v.Egress
		}
		l.IsolatedBy = side.IsolatedBy
	}
	return l
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return spec.ProtocolTCP
	case 17:
		return spec.ProtocolUDP
	case 132:
		return spec.ProtocolSCTP
	case 1:
		return "ICMP"
	}
	return fmt.Sprintf("PROTO/%d", p)
}
