package main

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
)

// The kube-proxy baseline: the nat rules kube-proxy's iptables mode
// writes for clusterIP services (KUBE-SERVICES -> KUBE-SVC-* ->
// KUBE-SEP-*, random choice with the statistic match, masquerade marks),
// loaded with iptables-restore inside a lab node's namespace only.

// iptables is one iptables backend.
type iptables struct {
	name       string // iptables-nft | iptables-legacy
	restoreCmd string // its iptables-restore
}

var backends = []iptables{
	{"iptables-nft", "iptables-nft-restore"},
	{"iptables-legacy", "iptables-legacy-restore"},
}

// kubeService is one service port with its endpoints ("ip:port").
type kubeService struct {
	name, ip  string
	port      int
	endpoints []string
}

func chainHash(prefix, s string) string {
	h := sha256.Sum256([]byte(s))
	return prefix + base32.StdEncoding.EncodeToString(h[:])[:16]
}

func svcChain(s kubeService) string { return chainHash("KUBE-SVC-", "bench/"+s.name+":tcp") }
func sepChain(s kubeService, ep string) string {
	return chainHash("KUBE-SEP-", "bench/"+s.name+":tcp"+ep)
}

// kubeRules renders the nat table for services, in order: the first
// service is matched by the first rule of KUBE-SERVICES, the last by the
// last one.
func kubeRules(svcs []kubeService, podCIDR string) string {
	var chains, rules strings.Builder
	chains.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	chains.WriteString(":KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n")
	rules.WriteString(`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n")
	rules.WriteString(`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n")
	rules.WriteString(`-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING` + "\n")
	rules.WriteString("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n")
	rules.WriteString("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n")
	rules.WriteString("-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n")
	rules.WriteString(`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully` + "\n")
	for _, s := range svcs {
		fmt.Fprintf(&chains, ":%s - [0:0]\n", svcChain(s))
		fmt.Fprintf(&rules, "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"bench/%s:tcp cluster IP\" -m tcp --dport %d -j %s\n",
			s.ip, s.name, s.port, svcChain(s))
		svcBody(&rules, s, podCIDR)
		for _, ep := range s.endpoints {
			fmt.Fprintf(&chains, ":%s - [0:0]\n", sepChain(s, ep))
			sepBody(&rules, s, ep)
		}
	}
	return chains.String() + rules.String() + "COMMIT\n"
}

// svcBody writes a KUBE-SVC chain's rules: masquerade traffic from
// outside the pod network, then one endpoint at random.
func svcBody(b *strings.Builder, s kubeService, podCIDR string) {
	fmt.Fprintf(b, "-A %s ! -s %s -d %s/32 -p tcp -m comment --comment \"bench/%s:tcp cluster IP\" -m tcp --dport %d -j KUBE-MARK-MASQ\n",
		svcChain(s), podCIDR, s.ip, s.name, s.port)
	for i, ep := range s.endpoints {
		left := len(s.endpoints) - i
		if left > 1 {
			fmt.Fprintf(b, "-A %s -m comment --comment \"bench/%s:tcp -> %s\" -m statistic --mode random --probability %.11f -j %s\n",
				svcChain(s), s.name, ep, 1/float64(left), sepChain(s, ep))
		} else {
			fmt.Fprintf(b, "-A %s -m comment --comment \"bench/%s:tcp -> %s\" -j %s\n", svcChain(s), s.name, ep, sepChain(s, ep))
		}
	}
}

func sepBody(b *strings.Builder, s kubeService, ep string) {
	ip, _, _ := strings.Cut(ep, ":")
	fmt.Fprintf(b, "-A %s -s %s/32 -m comment --comment \"bench/%s:tcp\" -j KUBE-MARK-MASQ\n", sepChain(s, ep), ip, s.name)
	fmt.Fprintf(b, "-A %s -p tcp -m comment --comment \"bench/%s:tcp\" -m tcp -j DNAT --to-destination %s\n", sepChain(s, ep), s.name, ep)
}

// partialUpdate is what kube-proxy's partial sync restores (with
// --noflush) when service s went from old to its current endpoints: its
// KUBE-SVC chain rewritten, new KUBE-SEP chains added, stale ones deleted.
func partialUpdate(s kubeService, old []string, podCIDR string) string {
	var chains, rules strings.Builder
	chains.WriteString("*nat\n")
	fmt.Fprintf(&chains, ":%s - [0:0]\n", svcChain(s))
	svcBody(&rules, s, podCIDR)
	cur := map[string]bool{}
	for _, ep := range s.endpoints {
		cur[ep] = true
		fmt.Fprintf(&chains, ":%s - [0:0]\n", sepChain(s, ep))
		sepBody(&rules, s, ep)
	}
	for _, ep := range old {
		if !cur[ep] {
			fmt.Fprintf(&chains, ":%s - [0:0]\n", sepChain(s, ep))
			fmt.Fprintf(&rules, "-X %s\n", sepChain(s, ep))
		}
	}
	return chains.String() + rules.String() + "COMMIT\n"
}

// emptyNat is a nat table without rules: restoring it flushes ours.
const emptyNat = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"

// restore runs the backend's iptables-restore in netns ns and returns its
// wall time (process start included, as kube-proxy pays it too).
func (ipt iptables) restore(ctx context.Context, ns, rules string, noflush bool) (time.Duration, error) {
	argv := []string{ipt.restoreCmd, "-w"}
	if noflush {
		argv = append(argv, "--noflush")
	}
	start := time.Now()
	_, err := nsExec(ctx, ns, rules, argv...)
	return time.Since(start), err
}

// ruleCount counts the rules of the nat table in netns ns.
func (ipt iptables) ruleCount(ctx context.Context, ns string) (int, error) {
	out, err := nsExec(ctx, ns, "", strings.TrimSuffix(ipt.restoreCmd, "-restore")+"-save", "-t", "nat")
	if err != nil {
		return 0, err
	}
	return strings.Count(string(out), "\n-A "), nil
}
