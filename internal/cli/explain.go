package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// explainCmd answers from the file alone whether policies let FROM open a
// connection to TO, and which policies and rules decided it on both ends.
// It never touches the kernel, so it runs anywhere the file is, and its
// answer is the expectation the probe holds the datapath to.
func explainCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "explain -f FILE FROM TO PORT[/PROTO]|ICMP|PROTO/N",
		Short: "Say whether the policies allow a connection, and which policies and rules decided it (no kernel needed)",
		Long: `Explain evaluates the topology file's NetworkPolicies for one connection, with
Kubernetes networking.k8s.io/v1 semantics, and prints ALLOWED or DENIED followed
by the source's egress and the destination's ingress: whether each pod is
isolated, by which policies, and which rule allowed the connection or why none did.

FROM and TO are namespace/pod or an IP address; an address of a declared pod is
that pod, any other is outside the cluster. When TO is a service's clusterIP the
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

Exit status is 0 whenever a verdict was printed, allowed or denied, and 1 when
the question cannot be answered (invalid file, unknown pod, bad port).`,
		Example: `  netreconcile explain -f topology.yaml x/a y/b 80/TCP
  netreconcile explain -f topology.yaml 192.0.2.10 x/a 443
  netreconcile explain -f topology.yaml x/a 10.96.0.10 53/UDP
  netreconcile explain -f topology.yaml x/a y/b icmp
  netreconcile explain -f topology.yaml x/a y/b proto/47`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := spec.Load(file)
			if err != nil {
				return err
			}
			src, err := policy.ParseEndpoint(r, args[0])
			if err != nil {
				return fmt.Errorf("read FROM: %w", err)
			}
			dst, err := policy.ParseEndpoint(r, args[1])
			if err != nil {
				return fmt.Errorf("read TO: %w", err)
			}
			port, proto, err := policy.ParsePort(args[2])
			if err != nil {
				return fmt.Errorf("read PORT/PROTO: %w", err)
			}
			out := cmd.OutOrStdout()
			// A clusterIP translates TCP, UDP and SCTP ports only: any
			// other protocol is judged against the address itself.
			if dst.Pod == "" && !policy.Portless(proto) {
				svc, backends, err := policy.ServiceBackends(r, dst.IP, port, proto)
				if err != nil {
					return err
				}
				if svc != "" {
					return explainService(out, r, src, dst, svc, backends, port, proto)
				}
			}
			v := policy.Evaluate(r, src, dst, port, proto)
			if v.Err != nil {
				return v.Err
			}
			_, err = io.WriteString(out, v.String())
			return err
		},
	}
	fileFlag(cmd, &file)
	return cmd
}

// explainService prints one verdict per backend under a summary line:
// which backend a connection reaches is the load balancer's choice, so
// the answer is only ALLOWED when every backend allows it.
func explainService(w io.Writer, r *spec.Resolved, src, clusterIP policy.Endpoint, svc string, backends []policy.Backend, port int, proto string) error {
	verdicts := make([]policy.Verdict, len(backends))
	allowed := 0
	for i, b := range backends {
		verdicts[i] = policy.Evaluate(r, src, policy.PodEndpoint(b.Pod), b.Port, proto)
		if verdicts[i].Err != nil {
			return verdicts[i].Err
		}
		if verdicts[i].Allowed {
			allowed++
		}
	}
	word := "PARTIAL"
	switch allowed {
	case len(backends):
		word = "ALLOWED"
	case 0:
		word = "DENIED"
	}
	head := fmt.Sprintf("%s %s -> %s %d/%s (service %s)", word, src, clusterIP, port, proto, svc)
	if len(backends) == 0 {
		_, err := fmt.Fprintf(w, "%s: no backend serves this port, the connection is refused before policy applies\n", head)
		return err
	}
	if _, err := fmt.Fprintf(w, "%s: allowed to %d of %d backends; policies judge the connection after translation to the backend\n", head, allowed, len(backends)); err != nil {
		return err
	}
	for _, v := range verdicts {
		if _, err := io.WriteString(w, "\n"+v.String()); err != nil {
			return err
		}
	}
	return nil
}
