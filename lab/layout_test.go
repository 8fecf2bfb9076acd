package lab

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/spec"
)

func resolved(nodes ...spec.ResolvedNode) *spec.Resolved {
	return &spec.Resolved{Nodes: nodes}
}

func node(name, addr string) spec.ResolvedNode {
	return spec.ResolvedNode{Name: name, Address: netip.MustParsePrefix(addr), Uplink: "eth0"}
}

func TestLayout(t *testing.T) {
	r := resolved(
		node("a", "172.31.1.2/24"),
		node("b", "172.31.1.3/24"),
		node("c", "172.31.2.2/24"),
		spec.ResolvedNode{Name: "d", Address: netip.MustParsePrefix("172.31.2.254/24")}, // takes .254; uplink defaulted
	)
	in, err := Layout(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Subnets) != 2 {
		t.Fatalf("subnets = %v, want 2", in.Subnets)
	}
	want := map[string]struct {
		router, bridge, uplink string
	}{
		"a": {"172.31.1.254", in.Subnets[0].Bridge, "eth0"},
		"b": {"172.31.1.254", in.Subnets[0].Bridge, "eth0"},
		"c": {"172.31.2.253", in.Subnets[1].Bridge, "eth0"},
		"d": {"172.31.2.253", in.Subnets[1].Bridge, "eth0"},
	}
	for _, n := range in.Nodes {
		w := want[n.Name]
		if n.Router.String() != w.router || n.Bridge != w.bridge || n.Uplink != w.uplink {
			t.Errorf("node %s: router %s bridge %s uplink %s, want %+v", n.Name, n.Router, n.Bridge, n.Uplink, w)
		}
		if n.Netns != "nrlab-"+n.Name {
			t.Errorf("node %s: netns %q", n.Name, n.Netns)
		}
		if len(n.Port) > maxIfNameLen || len(n.Bridge) > maxIfNameLen {
			t.Errorf("node %s: names too long: %q %q", n.Name, n.Port, n.Bridge)
		}
	}
	if in.Subnets[0].Bridge == in.Subnets[1].Bridge {
		t.Errorf("both subnets use bridge %s", in.Subnets[0].Bridge)
	}
	if in.Nodes[0].Port == in.Nodes[1].Port {
		t.Errorf("nodes a and b share port name %s", in.Nodes[0].Port)
	}
	s := in.String()
	for _, w := range []string{in.Underlay, "172.31.1.254", "nrlab-c", "172.31.2.2/24"} {
		if !strings.Contains(s, w) {
			t.Errorf("String() lacks %q:\n%s", w, s)
		}
	}
}

func TestUnderlayNetns(t *testing.T) {
	ab := UnderlayNetns(resolved(node("a", "10.0.0.1/24"), node("b", "10.0.0.2/24")))
	ba := UnderlayNetns(resolved(node("b", "10.9.0.2/16"), node("a", "10.9.0.1/16")))
	ac := UnderlayNetns(resolved(node("a", "10.0.0.1/24"), node("c", "10.0.0.2/24")))
	if ab != ba {
		t.Errorf("same node set, different underlay: %s vs %s", ab, ba)
	}
	if ab == ac {
		t.Errorf("different node sets share underlay %s", ab)
	}
	if !strings.HasPrefix(ab, "nrlab-ul-") || len(ab) != len("nrlab-ul-")+8 {
		t.Errorf("underlay name %q", ab)
	}
}

func TestRouterAddr(t *testing.T) {
	for _, c := range []struct {
		prefix string
		used   []string
		want   string // "" for none
	}{
		{"10.0.0.0/24", nil, "10.0.0.254"},
		{"10.0.0.0/24", []string{"10.0.0.254", "10.0.0.253"}, "10.0.0.252"},
		{"10.0.0.0/30", []string{"10.0.0.2"}, "10.0.0.1"},
		{"10.0.0.0/30", []string{"10.0.0.2", "10.0.0.1"}, ""},
		{"10.0.0.0/31", []string{"10.0.0.0"}, "10.0.0.1"},
		{"10.0.0.1/32", nil, ""},
		{"fd00::/64", nil, "fd00::ffff:ffff:ffff:ffff"},
		{"fd00::/127", []string{"fd00::1"}, "fd00::"},
	} {
		used := map[netip.Addr]string{}
		for _, u := range c.used {
			used[netip.MustParseAddr(u)] = "n"
		}
		got, ok := routerAddr(netip.MustParsePrefix(c.prefix), used)
		if (c.want == "") == ok || (ok && got.String() != c.want) {
			t.Errorf("routerAddr(%s, %v) = %v, %v; want %q", c.prefix, c.used, got, ok, c.want)
		}
	}
}

func TestLayoutErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		r     *spec.Resolved
		wants []string
	}{
		{"no nodes", resolved(), []string{"no nodes"}},
		{"same address", resolved(node("a", "10.0.0.1/24"), node("b", "10.0.0.1/24")),
			[]string{`lab: node "b": invalid lab topology: address 10.0.0.1 is also node "a"'s`}},
		{"overlap", resolved(node("a", "10.0.1.1/24"), node("b", "10.0.0.2/16")),
			[]string{`node "b"`, "overlaps subnet 10.0.1.0/24 of node \"a\""}},
		{"network and broadcast", resolved(node("a", "10.0.0.0/24"), node("b", "10.0.0.255/24")),
			[]string{"network address", "broadcast address"}},
		{"full subnet", resolved(node("a", "10.0.0.1/30"), node("b", "10.0.0.2/30")),
			[]string{"subnet 10.0.0.0/30", "no free address left for the router"}},
		{"bad uplink", resolved(spec.ResolvedNode{Name: "a", Address: netip.MustParsePrefix("10.0.0.1/24"), Uplink: "a-very-long-uplink-name"}),
			[]string{`uplink "a-very-long-uplink-name" is not a valid interface name`}},
		{"lo as uplink", resolved(spec.ResolvedNode{Name: "a", Address: netip.MustParsePrefix("10.0.0.1/24"), Uplink: "lo"}),
			[]string{`uplink "lo" is not a valid interface name`}},
		{"bad name", resolved(node("a/b", "10.0.0.1/24")), []string{`node "a/b"`}},
		{"duplicate", resolved(node("a", "10.0.0.1/24"), node("a", "10.0.0.2/24")), []string{"duplicate node name"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Layout(c.r)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var le *Error
			if !errors.As(err, &le) {
				t.Errorf("error is not a *lab.Error: %v", err)
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestLayoutOnly: a lab of some of the file's nodes keeps the whole
// file's layout (the same routers and underlay) for those nodes and
// their subnets only; a name that is not a node is refused, named.
func TestLayoutOnly(t *testing.T) {
	r := resolved(node("a", "172.31.1.2/24"), node("b", "172.31.1.254/24"), node("c", "172.31.2.2/24"))
	all, err := Layout(r)
	if err != nil {
		t.Fatal(err)
	}
	in, err := all.only([]string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Nodes) != 1 || in.Nodes[0].Name != "a" || in.Underlay != all.Underlay {
		t.Fatalf("only a: %v", in)
	}
	// The router avoids b's address though b is not built.
	if len(in.Subnets) != 1 || in.Subnets[0].Router != netip.MustParseAddr("172.31.1.253") || in.Nodes[0].Router != in.Subnets[0].Router {
		t.Errorf("only a: subnets %v, router %s", in.Subnets, in.Nodes[0].Router)
	}
	if in, _ := all.only(nil); in != all {
		t.Error("no names: not the whole lab")
	}
	_, err = all.only([]string{"a", "x", "y"})
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrUnknownNode) || !strings.Contains(err.Error(), `"x", "y": no such node in the file`) {
		t.Errorf("unknown nodes: %v", err)
	}
	if err := CheckNodes(r, []string{"c", "z"}); !errors.Is(err, ErrUnknownNode) || !strings.Contains(err.Error(), `"z"`) {
		t.Errorf("CheckNodes: %v", err)
	}
}
