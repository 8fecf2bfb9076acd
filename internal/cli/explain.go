package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// explainCmd answers from the file alone whether policies let FROM open a
// connection to TO, and which policies and rules decided it on both ends.
// It never touches the kernel, so it runs anywhere the file is, and its
// answer is the expectation the probe holds the datapath to.
func explainCmd(g *globals) *cobra.Command {
	var files []string
	var output string
	cmd := &cobra.Command{
		Use:   "explain -f FILE FROM TO PORT[/PROTO]|ICMP|PROTO/N",
		Short: "Say whether the policies allow a connection, and which policies and rules decided it (no kernel needed)",
		Long: `Explain evaluates the topology file's NetworkPolicies for one connection, with
Kubernetes networking.k8s.io/v1 semantics, and prints ALLOWED or DENIED followed
by the source's egress and the destination's ingress: whether each pod is
isolated, by which policies, and which rule allowed the connection or why none did.

FROM and TO are namespace/pod or an IP address; an address of a declared pod is
that pod, any other is outside the cluster; TO may also be a service's
namespace/name, which stands for its clusterIP. When TO is a service's clusterIP the
connection is judged, as the datapath does, after translation: once per backend
pod on its target port, and the first line says ALLOWED (every backend), DENIED
(none, or no backend at all) or PARTIAL (some). PORT/PROTO is like 80/TCP,
53/UDP or 36412/SCTP; the protocol defaults to TCP.

Protocols without ports are given alone: ICMP, or PROTO/N for IP protocol
number N (PROTO/47 is GRE). No policy rule can name them, so, as the datapath
does, they are denied wherever the source's egress or the destination's
ingress is isolated (traffic between a pod and its own node aside), and
allowed otherwise; ICMP errors about an allowed connection always pass. A
clusterIP does not translate them: they are judged against the address.

A rule that does not allow the connection says why: which peer's selector did
not match which labels, or which ports. -o json gives the same answer as data
(format_version, verdict allowed|denied|partial, and each verdict's sides).

Exit status is 0 whenever a verdict was printed, allowed or denied, and 1 when
the question cannot be answered (invalid file, unknown pod, bad port).`,
		Example: `  netreconcile explain -f topology.yaml x/a y/b 80/TCP
  netreconcile explain -f topology.yaml 192.0.2.10 x/a 443
  netreconcile explain -f topology.yaml x/a 10.96.0.10 53/UDP
  netreconcile explain -f topology.yaml x/a kube-system/dns 53/UDP -o json
  netreconcile explain -f topology.yaml x/a y/b icmp
  netreconcile explain -f topology.yaml x/a y/b proto/47`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, _, err := g.loadOffline(files)
			if err != nil {
				return err
			}
			res, err := explain(r, args)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			_, err = io.WriteString(cmd.OutOrStdout(), res.text())
			return err
		},
	}
	fileFlag(cmd, &files)
	outputFlag(cmd, &output)
	return cmd
}

// explained is explain's answer: one verdict, or for a service one per
// backend under a summary.
type explained struct {
	FormatVersion string `json:"format_version"`
	// Verdict is allowed, denied, or for a service partial (some
	// backends allow it).
	Verdict  string `json:"verdict"`
	From     string `json:"from"`
	To       string `json:"to"`
	Port     int    `json:"port,omitempty"`
	Protocol string `json:"protocol"`
	Service  string `json:"service,omitempty"`
	// Verdicts: the connection's, or one per backend of a service.
	Verdicts []policy.Verdict `json:"verdicts"`
	src, dst policy.Endpoint
}

// explain answers FROM TO PORT; TO may be a pod, an address, a clusterIP
// or a service's namespace/name.
func explain(r *spec.Resolved, args []string) (*explained, error) {
	src, err := policy.ParseEndpoint(r, args[0])
	if err != nil {
		return nil, fmt.Errorf("read FROM: %w", err)
	}
	dst, err := parseTarget(r, args[1])
	if err != nil {
		return nil, fmt.Errorf("read TO: %w", err)
	}
	port, proto, err := policy.ParsePort(args[2])
	if err != nil {
		return nil, fmt.Errorf("read PORT/PROTO: %w", err)
	}
	e := &explained{FormatVersion: "1.0", From: src.String(), To: dst.String(), Port: port, Protocol: proto, src: src, dst: dst}
	// A clusterIP translates TCP, UDP and SCTP ports only: any other
	// protocol is judged against the address itself.
	if dst.Pod == "" && !policy.Portless(proto) {
		svc, backends, err := policy.ServiceBackends(r, dst.IP, port, proto)
		if err != nil {
			return nil, err
		}
		if svc != "" {
			return e.service(r, svc, backends)
		}
	}
	v := policy.Evaluate(r, src, dst, port, proto)
	if v.Err != nil {
		return nil, v.Err
	}
	e.Verdicts = []policy.Verdict{v}
	e.Verdict = word(v.Allowed)
	return e, nil
}

// parseTarget is ParseEndpoint, and also a service's namespace/name,
// which stands for its clusterIP.
func parseTarget(r *spec.Resolved, s string) (policy.Endpoint, error) {
	for i := range r.Services {
		if r.Services[i].Key == s {
			return policy.AddrEndpoint(r.Services[i].ClusterIP), nil
		}
	}
	return policy.ParseEndpoint(r, s)
}

func word(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

// service judges the connection once per backend: which backend it reaches
// is the load balancer's choice, so it is only allowed when every backend
// allows it.
func (e *explained) service(r *spec.Resolved, svc string, backends []policy.Backend) (*explained, error) {
	e.Service = svc
	e.Verdicts = []policy.Verdict{}
	allowed := 0
	for _, b := range backends {
		v := policy.Evaluate(r, e.src, policy.PodEndpoint(b.Pod), b.Port, e.Protocol)
		if v.Err != nil {
			return nil, v.Err
		}
		if v.Allowed {
			allowed++
		}
		e.Verdicts = append(e.Verdicts, v)
	}
	e.Verdict = "partial"
	switch allowed {
	case len(backends):
		e.Verdict = "allowed"
	case 0:
		e.Verdict = "denied"
	}
	return e, nil
}

func (e *explained) text() string {
	if e.Service == "" {
		return e.Verdicts[0].String()
	}
	allowed := 0
	for _, v := range e.Verdicts {
		if v.Allowed {
			allowed++
		}
	}
	head := fmt.Sprintf("%s %s -> %s %d/%s (service %s)", strings.ToUpper(e.Verdict), e.src, e.dst, e.Port, e.Protocol, e.Service)
	if len(e.Verdicts) == 0 {
		return head + ": no backend serves this port, the connection is refused before policy applies\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: allowed to %d of %d backends; policies judge the connection after translation to the backend\n", head, allowed, len(e.Verdicts))
	for _, v := range e.Verdicts {
		b.WriteString("\n" + v.String())
	}
	return b.String()
}
