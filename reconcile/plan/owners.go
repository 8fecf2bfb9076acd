package plan

import (
	"net/netip"

	"github.com/netreconcile/netreconcile/state"
)

// nodeHooks are the hooks of programs on the node's own devices (the
// uplink and the service device), as datapath names them.
var nodeHooks = map[string]bool{"uplink-ingress": true, "uplink-egress": true, "service-egress": true}

// recoverOwners names the owner of deletions that have none: datapath
// entries whose owner left the file (the kernel holds no owner for
// them). A pod's entries are found by its marked links: an endpoint by
// its device, a program by its interface, a pod's policy side and
// identity by the address on its links. A service's entry is named by
// the services record (see reconcile.setOwners) before it gets here; one
// the record does not name (written by an older netreconcile) is named by
// its address ("service 10.96.0.10:80/TCP").
func recoverOwners(changes []Change, owned *state.State) {
	var byIP map[netip.Addr]string
	linkOwner := func(ns, name string) string {
		if l := owned.Get(state.KindLink, state.LinkKey(ns, name)); l != nil {
			return l.Owner()
		}
		return ""
	}
	ipOwner := func(ip netip.Addr) string {
		if byIP == nil {
			byIP = map[netip.Addr]string{}
			for _, o := range owned.Of(state.KindAddr) {
				a := o.(*state.Addr)
				if owner := a.Owner(); owner != "" {
					byIP[a.Prefix.Addr()] = owner
				} else if owner := linkOwner(a.NS, a.Link); owner != "" {
					byIP[a.Prefix.Addr()] = owner
				}
			}
		}
		return byIP[ip]
	}
	for i := range changes {
		c := &changes[i]
		if c.Owner != "" || c.Action != Delete {
			continue
		}
		switch o := c.Observed.(type) {
		case *state.Service:
			c.Owner = "service/" + o.Key()
		case *state.Endpoint:
			c.Owner = linkOwner(state.NodeNS, o.Dev)
			if c.Owner == "" {
				c.Owner = ipOwner(o.IP)
			}
		case *state.Attach:
			c.Owner = linkOwner(o.NS, o.IfName)
			if c.Owner == "" && o.NS == state.NodeNS && nodeHooks[o.Direction] {
				c.Owner = state.NodeOwner // on the uplink, which netreconcile does not own
			}
		case *state.PodPolicy:
			c.Owner = ipOwner(o.IP)
		case *state.PolicyIdentity:
			if o.Prefix.IsSingleIP() {
				c.Owner = ipOwner(o.Prefix.Addr())
			}
		}
	}
}
