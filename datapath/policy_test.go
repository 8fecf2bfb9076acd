package datapath

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Policy entries are written by hand here; the compiler that derives them
// from NetworkPolicies is tested elsewhere. These tests pin down what the
// programs do with entries: isolation, identities, port blocks, the
// stateful pass of replies and established connections, the revision
// rule, and policy after service translation.

const denyWait = 400 * time.Millisecond

// reachTCP reports whether a TCP connection from p to addr completes.
func reachTCP(t *testing.T, p *pod, addr string) bool {
	t.Helper()
	c, _, _, err := greet2(p, addr, denyWait)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// greet2 is greet with a shorter timeout, for negative checks.
func greet2(p *pod, addr string, timeout time.Duration) (net.Conn, string, string, error) {
	c, err := dial(p, "tcp4", addr, timeout)
	if err != nil {
		return nil, "", "", err
	}
	c.SetDeadline(time.Now().Add(timeout))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil {
		c.Close()
		return nil, "", "", err
	}
	c.SetDeadline(time.Time{})
	return c, string(buf[:n]), "", nil
}

// reachUDP reports whether a UDP datagram from p to addr gets an answer.
func reachUDP(t *testing.T, p *pod, addr string) bool {
	t.Helper()
	c, err := dial(p, "udp4", addr, time.Second)
	must(t, err, "dial udp")
	defer c.Close()
	c.SetDeadline(time.Now().Add(denyWait))
	if _, err := c.Write([]byte("x")); err != nil {
		return false
	}
	buf := make([]byte, 1500)
	_, err = c.Read(buf)
	return err == nil
}

func host32(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, 32) }

// TestPolicy runs the policy cases in every attachment mode.
func TestPolicy(t *testing.T) {
	for _, v := range []struct {
		mode     string
		fastPath bool
	}{{"veth", true}, {"veth", false}, {"bridge", true}, {"macvlan", false}} {
		name := v.mode
		if v.fastPath {
			name += "/fastpath"
		}
		t.Run(name, func(t *testing.T) {
			dir := tempPinDir(t)
			w := newWorld(t, v.mode, dir, 3)
			defer w.dump()
			d := w.dp
			must(t, d.SetConfig(Config{FastPath: v.fastPath, HairpinIP: DefaultHairpinIP}), "config")
			p1, p2, p3 := w.pods[0], w.pods[1], w.pods[2]
			tcp2 := svcAddr(p2.ip, tcpPort)
			udp2 := svcAddr(p2.ip, udpPort)
			const id1, id3 = 1001, 1003
			must(t, d.SetPolicyIdentity(host32(p1.ip), id1), "identity")
			must(t, d.SetPolicyIdentity(host32(p3.ip), id3), "identity")
			rev := uint32(1)
			bump := func() {
				rev++
				must(t, d.SetPolicyRevision(rev), "revision")
			}
			in2 := PolicySide{IP: p2.ip, Dir: PolicyIngress}

			// Nothing isolated: everything passes, and is tracked.
			if !reachTCP(t, p1, tcp2) || !reachUDP(t, p3, udp2) {
				t.Fatal("no policy: traffic blocked")
			}
			conns, err := d.PolicyConntrack()
			must(t, err, "conntrack")
			if len(conns) == 0 {
				t.Error("allowed connections are not tracked")
			}

			// p2 isolated for ingress, one rule: TCP from p1 on tcpPort.
			r1 := PolicyRule{Local: p2.ip, Dir: PolicyIngress, Remote: id1, Proto: ProtoTCP, Port: tcpPort, PortBits: 16}
			must(t, d.AddPolicyRule(r1), "rule")
			must(t, d.SetPolicyIsolation(in2, true), "isolate")
			bump()
			if !reachTCP(t, p1, tcp2) {
				t.Error("p1 -> p2 tcp: denied, want allowed by the rule")
			}
			if reachTCP(t, p3, tcp2) {
				t.Error("p3 -> p2 tcp: allowed, want denied (identity not in the rule)")
			}
			if reachUDP(t, p1, udp2) {
				t.Error("p1 -> p2 udp: allowed, want denied (protocol not in the rule)")
			}
			// p2's own connections are not judged by its ingress, and
			// their replies come back in.
			if !reachTCP(t, p2, svcAddr(p3.ip, tcpPort)) || !reachUDP(t, p2, svcAddr(p1.ip, udpPort)) {
				t.Error("p2 -> others: replies did not come back into an ingress-isolated pod")
			}

			// A port block: UDP from anyone on the 1024-aligned block
			// holding udpPort.
			blockBits := uint8(6)
			block := uint16(udpPort) &^ (1<<(16-blockBits) - 1)
			rAny := PolicyRule{Local: p2.ip, Dir: PolicyIngress, Remote: IdentityAny, Proto: ProtoUDP, Port: block, PortBits: blockBits}
			must(t, d.AddPolicyRule(rAny), "block rule")
			bump()
			if !reachUDP(t, p3, udp2) || !reachUDP(t, p1, udp2) {
				t.Error("udp from any on the port block: denied")
			}
			rules, err := d.PolicyRules()
			must(t, err, "read rules")
			want := []PolicyRule{r1, rAny}
			slices.SortFunc(want, ComparePolicyRules)
			if !slices.Equal(rules, want) {
				t.Errorf("rules read back %+v, want %+v", rules, want)
			}

			// Established connections: a new revision re-judges them; one
			// still allowed keeps working, one no longer allowed is cut.
			c, err := dial(p1, "tcp4", tcp2, time.Second)
			must(t, err, "long-lived connection")
			defer c.Close()
			greeting := make([]byte, 100)
			c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Read(greeting)
			must(t, err, "greeting")
			echo(t, c, p2.name)
			must(t, d.AddPolicyRule(PolicyRule{Local: p2.ip, Dir: PolicyIngress, Remote: id3, Proto: ProtoTCP, Port: 9, PortBits: 16}), "unrelated rule")
			bump()
			echo(t, c, p2.name)
			must(t, d.DeletePolicyRule(r1), "delete rule")
			echo(t, c, p2.name) // same revision: not judged yet
			bump()
			c.SetDeadline(time.Now().Add(denyWait))
			if _, err := c.Write([]byte("after\n")); err == nil {
				if n, err := c.Read(greeting); err == nil {
					t.Errorf("connection no longer allowed still answers: %q", greeting[:n])
				}
			}
			if reachTCP(t, p1, tcp2) {
				t.Error("p1 -> p2 tcp after the rule went: allowed")
			}
			must(t, d.AddPolicyRule(r1), "rule back")
			bump()

			// Services: judged after translation, at the backend.
			key := ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}
			must(t, d.SetService(Service{Key: key, Backends: backendsOf([]*pod{p2}, tcpPort)}), "service")
			if !reachTCP(t, p1, svcAddr(clusterIP, 80)) {
				t.Error("p1 -> service -> p2: denied, want allowed (p1 may reach p2)")
			}
			if reachTCP(t, p3, svcAddr(clusterIP, 80)) {
				t.Error("p3 -> service -> p2: allowed, want denied")
			}
			// Hairpin: p2 reaching itself through its service is always
			// allowed.
			if !reachTCP(t, p2, svcAddr(clusterIP, 80)) {
				t.Error("p2 -> its own service: denied")
			}

			// Egress: p1 may only send TCP to p2 (judged on the backend,
			// so through the service too), and replies of connections into
			// p1 still leave it.
			out1 := PolicySide{IP: p1.ip, Dir: PolicyEgress}
			must(t, d.SetPolicyIdentity(host32(p2.ip), 1002), "identity p2")
			must(t, d.AddPolicyRule(PolicyRule{Local: p1.ip, Dir: PolicyEgress, Remote: 1002, Proto: ProtoTCP}), "egress rule")
			must(t, d.SetPolicyIsolation(out1, true), "isolate egress")
			bump()
			if !reachTCP(t, p1, svcAddr(clusterIP, 80)) || !reachTCP(t, p1, tcp2) {
				t.Error("p1 -> p2 (direct and through the service): denied by p1's egress")
			}
			if reachTCP(t, p1, svcAddr(p3.ip, tcpPort)) {
				t.Error("p1 -> p3: allowed, want denied by p1's egress")
			}
			if !reachTCP(t, p3, svcAddr(p1.ip, tcpPort)) {
				t.Error("p3 -> p1: the reply did not leave egress-isolated p1")
			}

			// Removing the isolation entries allows everything again.
			must(t, d.DeletePolicyIsolation(out1), "unisolate")
			must(t, d.DeletePolicyIsolation(in2), "unisolate")
			bump()
			if !reachTCP(t, p3, tcp2) || !reachTCP(t, p1, svcAddr(p3.ip, tcpPort)) {
				t.Error("after isolation was removed: denied")
			}
			iso, err := d.PolicyIsolation()
			must(t, err, "isolation")
			if len(iso) != 0 {
				t.Errorf("isolation entries left: %v", iso)
			}
		})
	}
}

// TestPolicyIdentities: the identity map is longest-prefix: a /32 inside a
// wider prefix wins, an except (a longer prefix with its own identity)
// carves a hole, and entries read back as written.
func TestPolicyIdentities(t *testing.T) {
	dir := tempPinDir(t)
	w := newWorld(t, "veth", dir, 3)
	defer w.dump()
	d := w.dp
	p1, p2, p3 := w.pods[0], w.pods[1], w.pods[2]
	wide := netip.MustParsePrefix("10.244.0.0/16")
	hole := netip.PrefixFrom(p3.ip, 31).Masked() // p3's /31: .12-.13 holds p2 and p3
	must(t, d.SetPolicyIdentity(wide, 500), "wide")
	must(t, d.SetPolicyIdentity(hole, IdentityWorld), "hole")
	must(t, d.SetPolicyIdentity(netip.PrefixFrom(p2.ip, 32), 502), "p2")
	must(t, d.AddPolicyRule(PolicyRule{Local: p1.ip, Dir: PolicyIngress, Remote: 500, Proto: ProtoTCP}), "rule")
	must(t, d.AddPolicyRule(PolicyRule{Local: p1.ip, Dir: PolicyIngress, Remote: 502, Proto: ProtoTCP}), "rule")
	must(t, d.SetPolicyIsolation(PolicySide{IP: p1.ip, Dir: PolicyIngress}, true), "isolate")
	must(t, d.SetPolicyRevision(7), "revision")
	tcp1 := svcAddr(p1.ip, tcpPort)
	if !reachTCP(t, p2, tcp1) {
		t.Error("p2 (/32 identity 502) -> p1: denied")
	}
	if reachTCP(t, p3, tcp1) {
		t.Error("p3 (in the hole of the wide prefix) -> p1: allowed")
	}
	ids, err := d.PolicyIdentities()
	must(t, err, "identities")
	want := map[netip.Prefix]uint32{wide: 500, hole: IdentityWorld, netip.PrefixFrom(p2.ip, 32): 502}
	if len(ids) != len(want) {
		t.Errorf("identities %v, want %v", ids, want)
	}
	for p, id := range want {
		if ids[p] != id {
			t.Errorf("identity of %v: %d, want %d", p, ids[p], id)
		}
	}
	if err := d.SetPolicyIdentity(netip.MustParsePrefix("10.244.1.1/16"), 3); !errors.Is(err, ErrInvalid) {
		t.Errorf("non-canonical prefix: %v, want ErrInvalid", err)
	}
	if err := d.AddPolicyRule(PolicyRule{Local: p1.ip, Dir: PolicyIngress, Proto: ProtoTCP, Port: 81, PortBits: 15}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unaligned port block: %v, want ErrInvalid", err)
	}
}
