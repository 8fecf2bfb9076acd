package reconcile

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/drivers/svcdev"
	"github.com/netreconcile/netreconcile/state"
)

// What the datapath serves, for show and the daemon's metrics: the
// frontends of each service with their backends, and the programs on the
// node's own devices (the uplink, the service device).

// nameFrontends sets Frontend on the service entries of obs that the
// file did not name (show without -f): the node's address is a nodePort,
// an address with a host route on the service device an external IP,
// anything else a clusterIP.
func nameFrontends(obs *Observed) {
	external := map[netip.Addr]bool{}
	for _, o := range obs.Owned.All(state.KindRoute) {
		if r := o.(*state.Route); r.NS == state.NodeNS && r.Dev == svcdev.Name && r.Dst.IsSingleIP() {
			external[r.Dst.Addr()] = true
		}
	}
	for _, o := range obs.Owned.All(state.KindService) {
		s := o.(*state.Service)
		switch {
		case s.Frontend != "":
		case slices.ContainsFunc(obs.Uplink.Addrs, func(p netip.Prefix) bool { return p.Addr() == s.IP }):
			s.Frontend = state.FrontendNodePort
		case external[s.IP]:
			s.Frontend = state.FrontendExternalIP
		default:
			s.Frontend = state.FrontendClusterIP
		}
	}
}

// Programmed counts what a converged pass left in the datapath.
type Programmed struct {
	// Frontends counts service entries by frontend (state.Frontend*);
	// Empty those of them without a backend (refusing, or dropping).
	Frontends, Empty map[string]int
	// Hooks counts live program attachments on the node's own devices
	// (uplink, service device) by hook.
	Hooks map[string]int
}

// Programmed counts the service entries and node attachments of the
// state the pass converged to (its desired state; nil before a pass).
func (r *Result) Programmed() *Programmed {
	if r == nil || r.desired == nil {
		return nil
	}
	p := &Programmed{Frontends: map[string]int{}, Empty: map[string]int{}, Hooks: map[string]int{}}
	for _, o := range r.desired.All(state.KindService) {
		s := o.(*state.Service)
		p.Frontends[s.Frontend]++
		if len(s.Backends) == 0 {
			p.Empty[s.Frontend]++
		}
	}
	for _, o := range r.desired.All(state.KindAttach) {
		if a := o.(*state.Attach); a.Live && a.Owner() == state.NodeOwner {
			p.Hooks[a.Direction]++
		}
	}
	return p
}

// ServiceFrontends groups the service entries of owned by owner (a
// service of the file, or "service/<address>" for one it does not
// name), frontends in clusterIP, nodePort, externalIP order.
func ServiceFrontends(owned *state.State) map[string][]*state.Service {
	out := map[string][]*state.Service{}
	for _, o := range owned.Of(state.KindService) {
		s := o.(*state.Service)
		owner := s.Owner()
		if owner == "" {
			owner = "service/" + s.Key()
		}
		out[owner] = append(out[owner], s)
	}
	order := map[string]int{state.FrontendClusterIP: 0, state.FrontendNodePort: 1, state.FrontendExternalIP: 2}
	for _, list := range out {
		slices.SortStableFunc(list, func(a, b *state.Service) int { return order[a.Frontend] - order[b.Frontend] })
	}
	return out
}

// FrontendLine describes one frontend as show prints it:
// "nodePort 172.31.1.2:30080/TCP -> 10.244.1.10:8080 (snat)".
func FrontendLine(s *state.Service) string {
	var b strings.Builder
	b.WriteString(s.Frontend + " " + s.Key() + " -> ")
	if len(s.Backends) == 0 {
		b.WriteString("no backend")
	} else {
		b.WriteString(strings.Join(s.Backends, ","))
	}
	var notes []string
	if s.Affinity {
		notes = append(notes, "affinity "+strconv.FormatUint(uint64(s.Timeout()), 10)+"s")
	}
	if s.SNAT {
		notes = append(notes, "snat")
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, ", ") + ")")
	}
	return b.String()
}
