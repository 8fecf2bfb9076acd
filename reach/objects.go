package reach

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
)

// objectChanges lists the cluster's egress and node port settings
// changed, then namespaces, nodes, pods, services and policies added,
// changed and removed, in that order and by key.
func objectChanges(old, new *spec.Resolved) []ObjectChange {
	var out []ObjectChange
	if f := fieldChanges(clusterOf(old), clusterOf(new)); len(f) > 0 {
		out = append(out, ObjectChange{Action: Update, Kind: "cluster", Key: "cluster", Fields: f})
	}
	out = appendChanges(out, "namespace", namespaces(old), namespaces(new), nsKey, func(a, b *namespace) []string {
		return labelFields(a.labels, b.labels)
	})
	out = appendChanges(out, "node", old.Nodes, new.Nodes, nodeKey, func(a, b *spec.ResolvedNode) []string {
		x, y := *a, *b
		x.Index, y.Index = 0, 0 // the place in the list is not the node
		return fieldChanges(&x, &y)
	})
	out = appendChanges(out, "pod", old.Pods, new.Pods, podKey, func(a, b *spec.ResolvedPod) []string {
		f := fieldChanges(a, b)
		if i := slices.Index(f, "labels"); i >= 0 {
			f[i] = labelFields(a.Labels, b.Labels)[0]
		}
		return f
	})
	out = appendChanges(out, "service", old.Services, new.Services, svcKey, fieldChanges[spec.ResolvedService])
	out = appendChanges(out, "policy", old.Policies, new.Policies, polKey, func(a, b *spec.ResolvedPolicy) []string {
		return fieldChanges(&a.Spec, &b.Spec)
	})
	return out
}

// clusterSettings are the cluster-wide settings whose change a diff
// shows (the others change every node's objects, which show instead).
type clusterSettings struct {
	Masquerade         bool
	NonMasqueradeCIDRs []string
	NodePortRange      string
}

func clusterOf(r *spec.Resolved) *clusterSettings {
	c := &clusterSettings{Masquerade: r.Masquerade, NodePortRange: fmt.Sprintf("%d-%d", r.NodePortMin, r.NodePortMax)}
	for _, p := range r.NonMasqueradeCIDRs {
		c.NonMasqueradeCIDRs = append(c.NonMasqueradeCIDRs, p.String())
	}
	return c
}

// addFrontends names, on each changed service port, its nodePort and
// external IPs in new.
func addFrontends(cs []BackendChange, new *spec.Resolved) {
	svcs := byKey(new.Services, svcKey)
	for i := range cs {
		c := &cs[i]
		s := svcs[c.Service]
		if s == nil {
			continue
		}
		for _, sp := range s.Ports {
			if sp.Port != c.Port || protocolOr(sp.Protocol) != c.Protocol {
				continue
			}
			if sp.NodePort != 0 {
				c.Frontends = append(c.Frontends, "nodePort "+strconv.Itoa(sp.NodePort))
			}
			for _, ip := range s.ExternalIPs {
				c.Frontends = append(c.Frontends, netip.AddrPortFrom(ip, uint16(sp.Port)).String())
			}
		}
	}
}

type namespace struct {
	name   string
	labels map[string]string
}

// namespaces lists r's namespaces by name, as the other lists are.
func namespaces(r *spec.Resolved) []namespace {
	out := make([]namespace, 0, len(r.Namespaces))
	for _, n := range slices.Sorted(maps.Keys(r.Namespaces)) {
		out = append(out, namespace{name: n, labels: r.Namespaces[n]})
	}
	return out
}

func nsKey(n *namespace) string             { return n.name }
func nodeKey(n *spec.ResolvedNode) string   { return n.Name }
func podKey(p *spec.ResolvedPod) string     { return p.Key }
func svcKey(s *spec.ResolvedService) string { return s.Key }
func polKey(p *spec.ResolvedPolicy) string  { return p.Key }

func byKey[T any](items []T, key func(*T) string) map[string]*T {
	m := make(map[string]*T, len(items))
	for i := range items {
		m[key(&items[i])] = &items[i]
	}
	return m
}

// appendChanges walks two lists sorted by key (as spec sorts them) side
// by side; fields names what differs in an object both have (none:
// unchanged).
func appendChanges[T any](out []ObjectChange, kind string, old, new []T, key func(*T) string, fields func(a, b *T) []string) []ObjectChange {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		c := 1 // only new is left
		switch {
		case j == len(new):
			c = -1
		case i < len(old):
			c = strings.Compare(key(&old[i]), key(&new[j]))
		}
		switch {
		case c < 0:
			out = append(out, ObjectChange{Action: Delete, Kind: kind, Key: key(&old[i])})
			i++
		case c > 0:
			out = append(out, ObjectChange{Action: Create, Kind: kind, Key: key(&new[j])})
			j++
		default:
			if f := fields(&old[i], &new[j]); len(f) > 0 {
				out = append(out, ObjectChange{Action: Update, Kind: kind, Key: key(&old[i]), Fields: f})
			}
			i, j = i+1, j+1
		}
	}
	return out
}

// fieldChanges names the struct fields of a and b that differ, in the
// file's spelling (the first letter lowered: Labels is labels, IP is ip).
func fieldChanges[T any](a, b *T) []string {
	if reflect.DeepEqual(a, b) {
		return nil // the common case, in one walk
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, fieldName(va.Type().Field(i).Name))
		}
	}
	return out
}

func fieldName(go_ string) string {
	if go_ == strings.ToUpper(go_) {
		return strings.ToLower(go_)
	}
	return strings.ToLower(go_[:1]) + go_[1:]
}

// labelFields spells a label change out, or returns nothing when equal.
func labelFields(a, b map[string]string) []string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		nv, ok := b[k]
		switch {
		case !ok:
			parts = append(parts, "-"+k+"="+a[k])
		case nv != a[k]:
			parts = append(parts, "~"+k+": "+a[k]+" -> "+nv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			parts = append(parts, "+"+k+"="+b[k])
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{"labels (" + strings.Join(parts, ", ") + ")"}
}

// portKey names one port of one service.
type portKey struct {
	svc   string
	port  int
	proto string
}

// backend is one pod serving a service port, on its target port.
type backend struct {
	pod  string
	port int
}

// backendsOf lists the backends of every service port of r by the one
// rule (spec's Selects and TargetOf), looking only at the pods of the
// service's namespace that carry its rarest label. A port without backends
// is present with none.
func backendsOf(r *spec.Resolved) map[portKey][]backend {
	idx := spec.NewPodIndex(r.Pods, nil)
	out := map[portKey][]backend{}
	for i := range r.Services {
		svc := &r.Services[i]
		cands := idx.Candidates(svc.Namespace, svc.Selector)
		for _, sp := range svc.Ports {
			k := portKey{svc: svc.Key, port: sp.Port, proto: protocolOr(sp.Protocol)}
			list := []backend{}
			for _, j := range cands {
				p := &r.Pods[j]
				if !svc.Selects(p) {
					continue
				}
				if tp, ok := sp.TargetOf(p); ok {
					list = append(list, backend{pod: p.Key, port: tp})
				}
			}
			out[k] = list
		}
	}
	return out
}

// backendChanges lists, for each service port in both files, the
// backends gained and lost.
func backendChanges(old, new map[portKey][]backend) []BackendChange {
	var out []BackendChange
	for k, ob := range old {
		nb, ok := new[k]
		if !ok {
			continue
		}
		c := BackendChange{Service: k.svc, Port: k.port, Protocol: k.proto,
			Gained: minus(nb, ob), Lost: minus(ob, nb)}
		if len(c.Gained)+len(c.Lost) > 0 {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b BackendChange) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), cmp.Compare(a.Port, b.Port), strings.Compare(a.Protocol, b.Protocol))
	})
	return out
}

func minus(a, b []backend) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x.pod+":"+strconv.Itoa(x.port))
		}
	}
	return out
}

func protocolOr(p string) string {
	if p == "" {
		return spec.ProtocolTCP
	}
	return p
}
