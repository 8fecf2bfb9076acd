// Package policy answers "may this connection happen?" for a topology
// file's NetworkPolicies, with the semantics of Kubernetes
// networking.k8s.io/v1 and without touching the kernel.
//
// It is the reference the datapath is measured against: `netreconcile
// explain` prints its [Verdict] for one connection, and the probe compares
// the reachability [Matrix] it computes with what the kernel actually lets
// through. It therefore evaluates the policies directly, rule by rule, and
// shares no code with the compiler that turns them into map contents; a
// bug in one shows up as a disagreement with the other.
//
// The semantics, as in Kubernetes:
//
//   - A pod is isolated for ingress (egress) when at least one policy in its
//     own namespace selects it and lists Ingress (Egress) in policyTypes
//     (spec has already defaulted policyTypes the Kubernetes way).
//   - Policies only allow; they are unioned. A connection needs the
//     source's egress and the destination's ingress to allow it; a side
//     that is not isolated allows everything.
//   - Peers: podSelector alone means pods of the policy's namespace;
//     namespaceSelector alone means every pod of the matching namespaces;
//     both in one peer must both match; separate peers are alternatives. An
//     absent or empty from/to list allows every peer, an absent or empty
//     ports list every port, and an empty ingress (egress) list with the
//     type listed denies everything in that direction.
//   - Ports match on protocol, number or endPort range, or name. A named port
//     is looked up in the destination pod's declared ports (for ingress the
//     selected pod, for egress the peer) with the same protocol; a name that
//     pod does not declare matches nothing.
//
// Where the Kubernetes API leaves behaviour to the implementation, this
// package chooses, and the datapath must follow:
//
//   - ipBlock matches pod addresses too, not only addresses outside the
//     cluster. The Kubernetes API leaves this open; Calico matches pod
//     addresses, while Cilium's documentation says its CIDR rules do not
//     work for the endpoints it manages. A file that allows 10.244.0.0/16
//     therefore allows every pod in it.
//   - A pod can always reach itself, whatever the policies say: the
//     Kubernetes documentation states that a pod cannot block access to
//     itself, the upstream conformance tests expect the diagonal of every
//     reachability table to be allowed, and a packet to the pod's own
//     address is delivered over lo inside the pod, where no datapath of ours
//     sees it. The verdict still evaluates both sides, so that explain can
//     say what the policies alone would decide.
//   - Traffic between a pod and the node it runs on (the node's underlay
//     address or the pod CIDR gateway the host carries) is always allowed,
//     as the Kubernetes documentation says for the pod's own node.
//   - Protocols without ports (ICMP, and any IP protocol but TCP, UDP and
//     SCTP) cannot be named by a rule, whose ports are TCP, UDP or SCTP:
//     they are denied in each direction in which a pod is isolated, even
//     by a rule that lists no ports, and allowed where it is not (the
//     pod's own node aside, as above). The datapath does the same, and
//     lets ICMP errors about an allowed connection through.
//   - An address that belongs to a declared pod is that pod: a connection
//     from 10.244.1.10 is judged as coming from the pod with that address.
//     Any other address is outside the cluster; no policy isolates it, and
//     only ipBlock peers can match it.
package policy
