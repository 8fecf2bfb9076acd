package desired

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// carryFile is a file of three namespaces with pods and services; edit
// changes it as a watch pass would see it.
func carryFile(t *testing.T, edit func(pods, svcs []string) ([]string, []string)) *spec.Resolved {
	t.Helper()
	r, err := spec.LoadBytes("carry.yaml", carryText(edit))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// carryText is carryFile's text.
func carryText(edit func(pods, svcs []string) ([]string, []string)) []byte {
	var pods, svcs []string
	for i := range 12 {
		ns := fmt.Sprintf("ns%d", i%3)
		pods = append(pods, fmt.Sprintf("  - {name: p%d, namespace: %s, node: n%d, labels: {app: a%d}, ports: [{name: web, port: %d}]}", i, ns, i%2, i%2, 8080+i%2))
	}
	for i := range 6 {
		svcs = append(svcs, fmt.Sprintf("  - {name: s%d, namespace: ns%d, clusterIP: 10.96.0.%d, selector: {app: a%d}, ports: [{port: 80, targetPort: web}]}", i, i%3, 10+i, i%2))
	}
	if edit != nil {
		pods, svcs = edit(pods, svcs)
	}
	text := "apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}\n" +
		"nodes:\n  - {name: n0, address: 192.168.1.1/24, uplink: eth0, podCIDR: 10.244.0.0/24}\n" +
		"  - {name: n1, address: 192.168.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}\n" +
		"pods:\n" + strings.Join(pods, "\n") + "\nservices:\n" + strings.Join(svcs, "\n") + "\n"
	return []byte(text)
}

// allBackends asks sh for every service port's list.
func allBackends(sh *Shared) map[string][]string {
	out := map[string][]string{}
	for i := range sh.r.Services {
		svc := &sh.r.Services[i]
		for _, port := range svc.Ports {
			out[svc.Key+fmt.Sprint(port.Port)] = sh.Backends(svc, port)
		}
	}
	return out
}

// TestSharedFrom: backend lists carried from the last file are those a
// fresh computation gives, for every kind of edit; and lists of
// namespaces nothing touched are kept, not computed again.
func TestSharedFrom(t *testing.T) {
	edits := map[string]func(pods, svcs []string) ([]string, []string){
		"pod label": func(p, s []string) ([]string, []string) {
			p[4] = strings.Replace(p[4], "app: a0", "app: a1", 1) // p4 is in ns1
			return p, s
		},
		"pod added": func(p, s []string) ([]string, []string) {
			return append(p, "  - {name: new, namespace: ns1, node: n0, labels: {app: a0}, ports: [{name: web, port: 9000}]}"), s
		},
		"pod removed": func(p, s []string) ([]string, []string) { return slices.Delete(p, 4, 5), s },
		"pod port": func(p, s []string) ([]string, []string) {
			p[4] = strings.Replace(p[4], "port: 8080", "port: 7070", 1)
			return p, s
		},
		"service target": func(p, s []string) ([]string, []string) {
			s[1] = strings.Replace(s[1], "targetPort: web", "targetPort: 8081", 1) // s1 is in ns1; no pod changed
			return p, s
		},
		"service selector": func(p, s []string) ([]string, []string) {
			s[3] = strings.Replace(s[3], "app: a1", "app: a0", 1) // s3 is in ns0; no pod changed
			return p, s
		},
		"service added": func(p, s []string) ([]string, []string) {
			return p, append(s, "  - {name: new, namespace: ns1, clusterIP: 10.96.0.99, selector: {app: a1}, ports: [{port: 81, targetPort: 8081}]}")
		},
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			prev := NewShared(carryFile(t, nil))
			before := allBackends(prev)
			r := carryFile(t, edit)
			carried := NewSharedFrom(prev.Carried(), r)
			got, want := allBackends(carried), allBackends(NewShared(r))
			for k, w := range want {
				if !slices.Equal(got[k], w) {
					t.Errorf("%s: carried %v, computed %v", k, got[k], w)
				}
			}
			// ns0 is untouched by every edit: its lists are the same slices.
			s0 := &r.Services[slices.IndexFunc(r.Services, func(s spec.ResolvedService) bool { return s.Key == "ns0/s0" })]
			if l := carried.Backends(s0, s0.Ports[0]); len(l) == 0 || &l[0] != &before["ns0/s080"][0] {
				t.Errorf("ns0/s0's list was computed again (%v), not kept", l)
			}
			if name == "service selector" {
				return // ns0 is indexed for s3
			}
			indexed := map[string]bool{}
			for ns, n := range carried.lists {
				indexed[ns] = n.pods != nil
			}
			if indexed["ns0"] || !indexed["ns1"] {
				t.Errorf("indexed namespaces %v, want ns1 and not ns0", indexed)
			}
		})
	}
}

// TestCarriedNodeState: a daemon's passes (NewSharedFrom, Carried) build
// what a fresh Build gives for every edit, keep the service entries the
// edit left alone, and return the state built last when neither the file
// nor the uplink facts changed.
func TestCarriedNodeState(t *testing.T) {
	cfg := &Config{Node: "n0", BPFFS: "/sys/fs/bpf/carry", Drivers: drivers.NewRegistry(veth.Driver{})}
	up := state.Uplink{Name: "eth0", Found: true, Index: 2, MTU: 1500}
	build := func(t *testing.T, sh *Shared, r *spec.Resolved, up state.Uplink) *state.State {
		t.Helper()
		c := *cfg
		c.Shared = sh
		s, err := Build(&c, r, up)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	text := func(t *testing.T, s *state.State) string {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	edit := func(p, s []string) ([]string, []string) {
		p[4] = strings.Replace(p[4], "app: a0", "app: a1", 1) // p4, ns1: ns1's services change
		return p, s
	}
	// Loaded as the daemon does, through one Parser: a file whose services
	// did not change shares them with the last.
	var p spec.Parser
	load := func(text []byte) *spec.Resolved {
		r, _, err := p.Load([]spec.Source{{Name: "carry.yaml", Data: text}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	old := load(carryText(nil))
	sh := NewSharedFrom(nil, old)
	first := build(t, sh, old, up)
	r := load(carryText(edit))
	if &r.Services[0] != &old.Services[0] {
		t.Fatal("the services of a file whose services did not change are not the last file's: nothing tests keeping them")
	}
	sh = NewSharedFrom(sh.Carried(), r)
	got := build(t, sh, r, up)
	if want := build(t, NewShared(r), r, up); text(t, got) != text(t, want) {
		t.Fatalf("carried build differs from a fresh one:\n%s\n%s", text(t, got), text(t, want))
	}
	kept, made := 0, 0
	for key, o := range got.All(state.KindService) {
		svc := o.(*state.Service)
		if first.Get(state.KindService, key) == o {
			kept++
			if !strings.HasPrefix(svc.OwnerK, "service/ns0/") && !strings.HasPrefix(svc.OwnerK, "service/ns2/") {
				t.Errorf("entry %s of %s kept, but its namespace's pods changed", key, svc.OwnerK)
			}
		} else {
			made++
		}
	}
	if kept == 0 || made == 0 {
		t.Errorf("%d entries kept and %d made; want the untouched namespaces' kept and ns1's made", kept, made)
	}
	// A service changed: every service is the file's own again.
	edited := load(carryText(func(p, s []string) ([]string, []string) {
		p, s = edit(p, s)
		s[3] = strings.Replace(s[3], "app: a1", "app: a0", 1) // s3, ns0
		return p, s
	}))
	sh = NewSharedFrom(sh.Carried(), edited)
	if got, want := build(t, sh, edited, up), build(t, NewShared(edited), edited, up); text(t, got) != text(t, want) {
		t.Fatalf("carried build after a service edit differs from a fresh one:\n%s\n%s", text(t, got), text(t, want))
	}
	// Back: kept entries hold their service's new backends.
	sh = NewSharedFrom(sh.Carried(), r)
	if again, want := build(t, sh, r, up), build(t, NewShared(r), r, up); text(t, again) != text(t, want) {
		t.Fatalf("carried build after the service edit was undone differs from a fresh one")
	}
	// A pass with the same file and uplink (kernel events) builds nothing;
	// another MTU is another state.
	got = build(t, sh, r, up)
	sh = NewSharedFrom(sh.Carried(), r)
	if again := build(t, sh, r, up); again != got {
		t.Errorf("the same file and uplink built a new state")
	}
	up.MTU = 9000
	if other := build(t, sh, r, up); other == got {
		t.Errorf("another uplink MTU returned the state built for the last")
	}
}

// TestSharedFromPolicies: the compiled policies carried to the next file
// give every node the programs a fresh compile does, for edits that
// patch the class table and one (a policy changed) that builds it again.
func TestSharedFromPolicies(t *testing.T) {
	pols := "policies:\n" +
		"  - {name: web, namespace: ns1, spec: {podSelector: {matchLabels: {app: a0}}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: a1}}}], ports: [{port: web}]}]}}\n" +
		"  - {name: back, namespace: ns1, spec: {podSelector: {matchLabels: {app: a1}}, ingress: [{from: [{podSelector: {matchLabels: {app: a0}}}]}]}}\n"
	// The policies go after the services, where carryFile ends.
	withPolicies := func(edit func(pods, svcs []string) ([]string, []string), pols string) func(p, s []string) ([]string, []string) {
		return func(p, s []string) ([]string, []string) {
			if edit != nil {
				p, s = edit(p, s)
			}
			return p, append(s, strings.Split(strings.TrimSuffix(pols, "\n"), "\n")...)
		}
	}
	edits := map[string]struct {
		pods func(pods, svcs []string) ([]string, []string)
		pols string
	}{
		"pod label": {func(p, s []string) ([]string, []string) {
			p[4] = strings.Replace(p[4], "app: a0", "app: a1", 1)
			return p, s
		}, pols},
		"pod port": {func(p, s []string) ([]string, []string) {
			p[5] = strings.Replace(p[5], "port: 8081", "port: 7070", 1)
			return p, s
		}, pols},
		"pod removed":    {func(p, s []string) ([]string, []string) { return slices.Delete(p, 1, 2), s }, pols},
		"policy changed": {nil, strings.Replace(pols, "{port: web}", "{port: 8080}", 1)},
	}
	for name, e := range edits {
		t.Run(name, func(t *testing.T) {
			prev := NewShared(carryFile(t, withPolicies(nil, pols)))
			for _, n := range []string{"n0", "n1"} {
				if _, err := prev.policies.Node(n); err != nil {
					t.Fatal(err)
				}
			}
			carried := prev.Carried()
			if carried.policies != prev.policies {
				t.Fatal("Carried dropped the compiled policies")
			}
			r := carryFile(t, withPolicies(e.pods, e.pols))
			sh := NewSharedFrom(carried, r)
			for _, n := range []string{"n0", "n1"} {
				got, err := sh.policies.Node(n)
				if err != nil {
					t.Fatal(err)
				}
				want, err := compile.NewCluster(r).Node(n)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("node %s: carried %+v, fresh %+v", n, got, want)
				}
				if len(want.Sides) == 0 {
					t.Errorf("node %s: no isolated side: the test compiles nothing", n)
				}
			}
		})
	}
}
