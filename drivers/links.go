package drivers

import (
	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/state"
)

// LinkKind is the kernel knowledge of one link type: how apply asks for
// a link of it, and how observe reads back the attributes that are the
// type's own. Each is defined beside the driver (or routing) that makes
// links of its type; package drivers/kinds lists them all.
type LinkKind struct {
	Type string // state.Link.Type: state.LinkVeth, ...
	// Parent: a link of the type has a parent device in the node
	// namespace (Link.Parent), whose ifindex New needs.
	Parent bool
	// Child: the link is the kernel's child of its parent (IFLA_LINK),
	// and may live in a pod namespace: it is then created there directly,
	// through the node namespace, and its parent read back by its
	// ifindex in the node namespace.
	Child bool
	// New returns the create request for l. la holds the attributes
	// every type shares (name, MTU, MAC).
	New func(l *state.Link, la netlink.LinkAttrs, refs LinkRefs) (netlink.Link, error)
	// Parse copies the type's own attributes of link into l (nil: none);
	// byIndex names the links of l's namespace by ifindex.
	Parse func(link netlink.Link, l *state.Link, byIndex map[int]string)
}

// LinkRefs are the kernel references a create request needs.
type LinkRefs struct {
	Parent int          // ifindex of Link.Parent in the node namespace (Parent kinds)
	PeerNS netlink.NsFd // the peer's namespace (veth)
}

// NameOf returns the name modes gives value v ("" for none): a link
// kind's mode table read backwards.
func NameOf[V comparable](modes map[string]V, v V) string {
	for name, m := range modes {
		if m == v {
			return name
		}
	}
	return ""
}
