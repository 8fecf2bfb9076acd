package state

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
)

// Network policy as the datapath holds it (see bpf/policy.h and package
// policy/compile): identity entries, the isolated sides of local pods with
// their rules, and the revision that makes tracked connections be judged
// again after a change. They exist only with a Datapath and go with it.

// PolicyIdentity is one entry of the identity map: the addresses of
// Prefix (those no longer prefix claims) have identity ID.
type PolicyIdentity struct {
	Prefix netip.Prefix `json:"prefix"`
	ID     uint32       `json:"id"`
	OwnerK string       `json:"owner,omitempty"`
}

func (p *PolicyIdentity) Kind() Kind            { return KindPolicyIdentity }
func (p *PolicyIdentity) Key() string           { return p.Prefix.String() }
func (p *PolicyIdentity) Owner() string         { return p.OwnerK }
func (p *PolicyIdentity) Attrs() []Attr         { return []Attr{{"identity", hex8(p.ID)}} }
func (p *PolicyIdentity) Immutable(string) bool { return false }
func (p *PolicyIdentity) String() string        { return "policy identity " + p.Prefix.String() }

// PodPolicy is one isolated side (ingress or egress) of a pod on this
// node and the rules that allow connections on it, each in the form
// remote/protocol/ports ("1f2e3d4c/TCP/80", "any/UDP/64-127",
// "any/TCP/all"), sorted. A side without a PodPolicy is not isolated.
type PodPolicy struct {
	IP        netip.Addr `json:"ip"`
	Direction string     `json:"direction"` // ingress | egress
	Isolated  bool       `json:"isolated,omitempty"`
	Rules     []string   `json:"rules,omitempty"`
	OwnerK    string     `json:"owner,omitempty"`
}

func (p *PodPolicy) Kind() Kind    { return KindPodPolicy }
func (p *PodPolicy) Key() string   { return p.IP.String() + "/" + p.Direction }
func (p *PodPolicy) Owner() string { return p.OwnerK }
func (p *PodPolicy) Attrs() []Attr {
	// (sameFields relies on these fields alone making the attributes)
	return []Attr{{"isolated", strconv.FormatBool(p.Isolated)}, {"rules", strings.Join(p.Rules, ",")}}
}
func (p *PodPolicy) Immutable(string) bool { return false }
func (p *PodPolicy) String() string        { return "policy of " + p.IP.String() + " (" + p.Direction + ")" }

// PolicyRevision is the revision of the policy entries that the datapath
// judges tracked connections against; written after every other policy
// entry.
type PolicyRevision struct {
	PinDir   string `json:"pin_dir"`
	Revision uint32 `json:"revision"`
	OwnerK   string `json:"owner,omitempty"`
}

func (p *PolicyRevision) Kind() Kind            { return KindPolicyRevision }
func (p *PolicyRevision) Key() string           { return p.PinDir }
func (p *PolicyRevision) Owner() string         { return p.OwnerK }
func (p *PolicyRevision) Attrs() []Attr         { return []Attr{{"revision", hex8(p.Revision)}} }
func (p *PolicyRevision) Immutable(string) bool { return false }
func (p *PolicyRevision) String() string        { return "policy revision of " + p.PinDir }

// hex8 is fmt's %08x of v, without fmt's cost (a plan compares thousands
// of these).
func hex8(v uint32) string { return hex.EncodeToString(binary.BigEndian.AppendUint32(nil, v)) }
