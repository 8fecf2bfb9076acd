// Network policy hooks of the service datapath (datapath.c includes this
// file after struct pkt).
//
// Both run on the translated packet (after DNAT, before any redirect), so
// policies see backend pod addresses and target ports, as Kubernetes
// NetworkPolicy requires:
//
//   policy_egress   every packet leaving a pod (nr_from_pod, nr_pod_egress):
//                   the egress rules of the source pod.
//   policy_ingress  every packet entering a pod: in nr_to_pod and
//                   nr_pod_ingress, and in nr_from_pod just before the fast
//                   path redirects to a local pod (which skips that pod's
//                   nr_to_pod): the ingress rules of the destination pod.
//
// Until network policy lands both allow everything. They must stay free of
// side effects on the packet; a verdict other than NR_POLICY_ALLOW drops it.

#ifndef NR_POLICY_H
#define NR_POLICY_H

#define NR_POLICY_ALLOW 0
#define NR_POLICY_DENY 1

static __always_inline int policy_egress(struct __sk_buff *skb, const struct pkt *p)
{
	return NR_POLICY_ALLOW;
}

static __always_inline int policy_ingress(struct __sk_buff *skb, const struct pkt *p)
{
	return NR_POLICY_ALLOW;
}

#endif
