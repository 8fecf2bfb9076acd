package state

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// DatapathOwner owns the node-wide datapath object.
const DatapathOwner = "datapath"

// Datapath is a node's eBPF datapath: programs loaded against maps pinned
// under PinDir. Deleting it unpins everything, and with it every service,
// endpoint and attachment.
type Datapath struct {
	PinDir   string `json:"pin_dir"`
	FastPath bool   `json:"fast_path,omitempty"`
	// Reusable is false when the pinned maps have a layout this build
	// cannot use: the datapath is then replaced (observed only).
	Reusable bool `json:"reusable,omitempty"`
	// MapSizes lists the map sizes that differ from the defaults, as
	// "policyRules=1024,services=512" ("" for none). A map's size is
	// fixed when it is made: a change replaces the datapath.
	MapSizes string `json:"map_sizes,omitempty"`
	// ConntrackPerSource bounds the conntrack entries of one source in
	// each table (0: the datapath's default).
	ConntrackPerSource uint32 `json:"conntrack_per_source,omitempty"`
	// NodeAddr is the node's underlay address: the source of connections
	// that services source-NAT (externalTrafficPolicy Cluster).
	NodeAddr netip.Addr `json:"node_addr,omitzero"`
	OwnerK   string     `json:"owner,omitempty"`
}

func (d *Datapath) Kind() Kind    { return KindDatapath }
func (d *Datapath) Key() string   { return d.PinDir }
func (d *Datapath) Owner() string { return d.OwnerK }
func (d *Datapath) Attrs() []Attr {
	attrs := []Attr{{"fast_path", strconv.FormatBool(d.FastPath)}, {"layout", layout(d.Reusable)}, {"map_sizes", d.MapSizes}}
	if d.ConntrackPerSource != 0 {
		attrs = append(attrs, Attr{"conntrack_per_source", strconv.FormatUint(uint64(d.ConntrackPerSource), 10)})
	}
	if d.NodeAddr.IsValid() {
		attrs = append(attrs, Attr{"node_addr", d.NodeAddr.String()})
	}
	return attrs
}
func (d *Datapath) Immutable(name string) bool { return name == "layout" || name == "map_sizes" }
func (d *Datapath) String() string             { return "datapath " + d.PinDir }

func layout(ok bool) string {
	if ok {
		return "current"
	}
	return "incompatible"
}

// DefaultAffinityTimeout is the idle time, in seconds, after which a
// client's affinity to a backend ends when the file sets none (as in
// Kubernetes).
const DefaultAffinityTimeout = 10800

// Frontends: the ways into a service, each a Service entry of its own.
const (
	FrontendClusterIP  = "clusterIP"
	FrontendNodePort   = "nodePort"
	FrontendExternalIP = "externalIP"
)

// Service is one frontend of a service (its clusterIP, this node's
// address and a nodePort, or an external IP, with one port) as the
// datapath holds it.
type Service struct {
	IP       netip.Addr `json:"ip"`
	Port     uint16     `json:"port"`
	Proto    string     `json:"proto"`              // TCP | UDP | SCTP
	Backends []string   `json:"backends,omitempty"` // "ip:port", sorted
	Affinity bool       `json:"affinity,omitempty"` // sessionAffinity ClientIP
	// AffinityTimeout is the affinity's idle timeout in seconds (0:
	// DefaultAffinityTimeout).
	AffinityTimeout uint32 `json:"affinity_timeout,omitempty"`
	// SNAT: new connections from outside the node leave with the node's
	// address (externalTrafficPolicy Cluster on a nodePort or external IP).
	SNAT bool `json:"snat,omitempty"`
	// Frontend says which way into the service the entry is (Frontend*
	// constants): from the file, or on the live side from the owner the
	// file gives it or the node's address. Not an attribute.
	Frontend string `json:"frontend,omitempty"`
	OwnerK   string `json:"owner,omitempty"`
}

func (s *Service) Kind() Kind { return KindService }
func (s *Service) Key() string {
	// called for every service on every comparison of a plan: no fmt
	return s.IP.String() + ":" + strconv.Itoa(int(s.Port)) + "/" + s.Proto
}
func (s *Service) Owner() string { return s.OwnerK }
func (s *Service) Attrs() []Attr {
	// (sameFields relies on these fields alone making the attributes)
	a := []Attr{{"backends", strings.Join(s.Backends, ",")}, {"affinity", strconv.FormatBool(s.Affinity)}}
	if t := s.Timeout(); s.Affinity && t != DefaultAffinityTimeout {
		a = append(a, Attr{"affinity_timeout", strconv.FormatUint(uint64(t), 10)})
	}
	if s.SNAT {
		a = append(a, Attr{"snat", "true"})
	}
	return a
}
func (s *Service) Immutable(string) bool { return false }
func (s *Service) String() string        { return "service " + s.Key() }

// Timeout is the affinity timeout in seconds, defaulted.
func (s *Service) Timeout() uint32 {
	if s.AffinityTimeout == 0 {
		return DefaultAffinityTimeout
	}
	return s.AffinityTimeout
}

// sameAs reports whether s and o have equal attributes (see Attrs).
func (s *Service) sameAs(o *Service) bool {
	return s.Affinity == o.Affinity && s.SNAT == o.SNAT && (!s.Affinity || s.Timeout() == o.Timeout()) &&
		slices.Equal(s.Backends, o.Backends)
}

// Endpoint is a pod on this node that the fast path delivers to directly:
// its IP and its host-side interface in the node namespace.
type Endpoint struct {
	IP     netip.Addr `json:"ip"`
	Dev    string     `json:"dev"`
	OwnerK string     `json:"owner,omitempty"`
}

func (e *Endpoint) Kind() Kind            { return KindEndpoint }
func (e *Endpoint) Key() string           { return e.IP.String() }
func (e *Endpoint) Owner() string         { return e.OwnerK }
func (e *Endpoint) Attrs() []Attr         { return []Attr{{"dev", e.Dev}} }
func (e *Endpoint) Immutable(string) bool { return false }
func (e *Endpoint) String() string        { return "endpoint " + e.IP.String() }

// Attach is a datapath program attached to an interface. Live is false
// when the attachment is defunct (its interface is gone) or runs another
// build's program: an update attaches this build's.
type Attach struct {
	Name      string `json:"name"` // the pin name: namespace, interface, hook
	NS        string `json:"ns,omitempty"`
	IfName    string `json:"ifname"`
	Direction string `json:"direction"`
	Live      bool   `json:"live,omitempty"`
	// Source is the pod address bound to the interface (datapath.Bind):
	// set on the hook of packets leaving a pod, whose program drops
	// anything the pod sends under another address or MAC.
	Source string `json:"source,omitempty"`
	// PodNS is the pod's namespace, where the MAC to bind is read (desired
	// side only; not an attribute).
	PodNS  string `json:"-"`
	OwnerK string `json:"owner,omitempty"`
}

func (a *Attach) Kind() Kind    { return KindAttach }
func (a *Attach) Key() string   { return a.Name }
func (a *Attach) Owner() string { return a.OwnerK }
func (a *Attach) Attrs() []Attr {
	attrs := []Attr{{"live", strconv.FormatBool(a.Live)}}
	if a.Source != "" {
		attrs = append(attrs, Attr{"source", a.Source})
	}
	return attrs
}
func (a *Attach) Immutable(string) bool { return false }
func (a *Attach) String() string {
	return "program on " + a.IfName + " (" + a.Direction + ") in " + NSLabel(a.NS)
}
