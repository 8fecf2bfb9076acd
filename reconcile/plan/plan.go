// Package plan compares a node's desired state with the observed one and
// renders the result: Diff makes a Plan value, ordered for apply, without
// I/O; WriteText and the JSON form show it.
package plan

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/netreconcile/netreconcile/state"
)

// Action is what a change does to one object.
type Action string

// Actions, shown as terraform shows them.
const (
	Create  Action = "create"  // +
	Update  Action = "update"  // ~
	Delete  Action = "delete"  // -
	Replace Action = "replace" // -/+ (an immutable attribute changed)
)

var symbols = map[Action]string{Create: "+", Update: "~", Delete: "-", Replace: "-/+"}

// FormatVersion versions the JSON shape of a Plan. Bump the major
// number on incompatible changes.
const FormatVersion = "2.0"

// Change is one planned change to one object.
type Change struct {
	Action  Action         `json:"action"`
	Kind    string         `json:"kind"`
	Key     string         `json:"key"`
	Owner   string         `json:"owner,omitempty"`
	Attrs   []state.Attr   `json:"attributes,omitempty"` // what a created object will have
	Changes []state.Change `json:"changes,omitempty"`    // update/replace: attributes that differ
	// ImpliedBy names the namespace whose deletion removes this object:
	// nothing is done for it but waiting.
	ImpliedBy string `json:"implied_by,omitempty"`
	// Reason explains a change that the attributes alone do not.
	Reason string `json:"reason,omitempty"`
	// OwnerRemoved says that Owner is no longer in the file (a deletion
	// of what it had).
	OwnerRemoved bool `json:"owner_removed,omitempty"`

	Desired  state.Object `json:"-"`
	Observed state.Object `json:"-"`

	// A pod policy side's change runs in parts (see policyBlock): the
	// part a step runs, its writes, and whether a later step finishes
	// the change (this one is then not counted as applied).
	part   stepPart
	writes []PolicyWrite
	more   bool
}

// Summary counts a plan's changes the way terraform does: a replace is
// one add and one destroy.
type Summary struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
}

// Plan is the ordered list of changes that converges a node.
type Plan struct {
	FormatVersion string   `json:"format_version"`
	Node          string   `json:"node"`
	Changes       []Change `json:"changes"`
	Summary       Summary  `json:"summary"`
	// Adopted lists the namespaces that netreconcile did not create and
	// that pods with changes in this plan use (pods[].adoptNetns).
	Adopted []Adoption `json:"adopted_netns,omitempty"`

	// steps is what apply executes: Changes plus the delete half of
	// every replace, in order.
	steps []Change
}

// Adoption is a pod using a namespace that netreconcile did not create:
// its objects are made inside it, and destroy leaves the namespace.
type Adoption struct {
	Pod   string `json:"pod"` // namespace/name
	Netns string `json:"netns"`
}

// StepCount is the number of steps that apply counts: a change in parts
// counts once.
func (p *Plan) StepCount() int {
	n := 0
	for _, c := range p.steps {
		if !c.more {
			n++
		}
	}
	return n
}

// Steps is what apply executes, in order: Changes plus the delete half
// of every replace, a pod policy side's change in its parts.
func (p *Plan) Steps() []Change { return p.steps }

// More reports whether a later step finishes c's change (c is one part
// of it, not counted as applied).
func (c Change) More() bool { return c.more }

// PolicyWrites lists the policy map writes step c makes to a pod side:
// the writes of its part, or all of them for a change applied whole.
func (c Change) PolicyWrites() []PolicyWrite {
	if c.part == partWhole {
		closing, opening := sideParts(c)
		return append(closing, opening...)
	}
	return c.writes
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }

// ErrClash is wrapped by errors about foreign objects in the way.
var ErrClash = errors.New("clash with an object netreconcile does not own")

// ErrForeignNetns is wrapped by the error about a pod whose namespace
// exists, was not created by netreconcile, and is not adopted.
var ErrForeignNetns = errors.New("namespace not created by netreconcile")

// Diff compares desired with observed and returns the plan. It fails,
// listing every one, when a desired object would clash with a foreign
// object, so that nothing is changed. It does no I/O.
func Diff(node string, desired *state.State, obs *state.Observed) (*Plan, error) {
	if err := clashes(desired, obs); err != nil {
		return nil, err
	}
	p := &Plan{FormatVersion: FormatVersion, Node: node, Changes: []Change{}}
	// Kinds are compared apart, on every CPU (thousands of services and
	// routes at scale), and their changes joined in kind order.
	kinds := state.Kinds()
	type kindChanges struct{ puts, dels []Change }
	per := make([]kindChanges, len(kinds))
	var wg sync.WaitGroup
	for i, k := range kinds {
		if desired.Count(k) == 0 && obs.Owned.Count(k) == 0 {
			continue
		}
		wg.Go(func() { per[i].puts, per[i].dels = diffKind(k, desired, obs) })
	}
	wg.Wait()
	nputs, ndels := 0, 0
	for _, kc := range per {
		nputs, ndels = nputs+len(kc.puts), ndels+len(kc.dels)
	}
	dels, puts := make([]Change, 0, ndels), make([]Change, 0, nputs)
	for _, kc := range per {
		puts, dels = append(puts, kc.puts...), append(dels, kc.dels...)
	}
	puts = append(puts, readdOnAddrLoss(desired, obs, dels, puts)...)
	puts = append(puts, readdOnLinkLoss(desired, obs, dels, puts)...)
	// Deletions run first, most dependent kinds first (routes before
	// links before namespaces); then creations in kind order.
	dels = stableSorted(dels, func(a, b *Change) int { return cmp.Compare(kindOf(b), kindOf(a)) })
	puts = stableSorted(puts, func(a, b *Change) int {
		return cmp.Or(cmp.Compare(kindOf(a), kindOf(b)), cmp.Compare(linkRank(a.Desired), linkRank(b.Desired)))
	})
	markImplied(dels, desired)
	impliedByDatapath(dels)
	replaced := map[string]bool{}
	for _, c := range puts {
		if c.Action == Replace {
			replaced[c.Kind+"|"+c.Key] = true
		}
	}
	p.Changes = slices.Grow(p.Changes, len(dels)+len(puts))
	for _, c := range dels {
		if c.Action == Delete && replaced[c.Kind+"|"+c.Key] {
			continue // shown as one replace; apply deletes it first
		}
		p.Changes = append(p.Changes, c)
	}
	p.Changes = append(p.Changes, puts...)
	p.steps = orderSteps(dels, puts)
	recoverOwners(p.Changes, obs.Owned)
	// Shown grouped by owner (node-wide objects first), in step order
	// within an owner; apply follows steps.
	p.Changes = stableSorted(p.Changes, func(a, b *Change) int { return compareOwners(a.Owner, b.Owner) })
	p.Adopted = adoptions(desired, obs, p.Changes)
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			p.Summary.Add++
		case Update:
			p.Summary.Change++
		case Delete:
			p.Summary.Destroy++
		case Replace:
			p.Summary.Add++
			p.Summary.Destroy++
		}
	}
	return p, nil
}

// adoptions lists the adopted namespaces of the pods that changes touch:
// the plan shows an adoption when it puts objects into the namespace.
func adoptions(desired *state.State, obs *state.Observed, changes []Change) []Adoption {
	if len(obs.Foreign.Netns) == 0 {
		return nil
	}
	touched := map[string]bool{}
	for _, c := range changes {
		touched[c.Owner] = true
	}
	var out []Adoption
	for key, o := range desired.All(state.KindNetns) {
		if n := o.(*state.Netns); n.Adopt && obs.Foreign.Netns[key] && touched[n.OwnerK] {
			out = append(out, Adoption{Pod: strings.TrimPrefix(n.OwnerK, "pod/"), Netns: n.Ref})
		}
	}
	slices.SortFunc(out, func(a, b Adoption) int { return strings.Compare(a.Pod, b.Pod) })
	return out
}

// orderSteps returns what apply executes: the deletions, in order, then
// the creations and updates, with the policy entries' changes taken from
// both and run as policyBlock orders them, where their kinds fall among
// the creations: after the datapath and the attachments, before the
// endpoints, addresses and routes of pods (see state.Kind).
func orderSteps(dels, puts []Change) []Change {
	block, dels, puts := policyBlock(dels, puts)
	at, _ := slices.BinarySearchFunc(puts, state.KindPolicyRevision+1, func(c Change, k state.Kind) int {
		return cmp.Compare(KindOf(c), k)
	})
	steps := make([]Change, 0, len(dels)+len(puts)+len(block))
	steps = append(append(steps, dels...), puts[:at]...)
	return append(append(steps, block...), puts[at:]...)
}

// compareOwners orders node-wide owners before pods, each by name.
func compareOwners(a, b string) int {
	podA, podB := strings.HasPrefix(a, "pod/"), strings.HasPrefix(b, "pod/")
	if podA != podB {
		if podB {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// diffKind compares the objects of kind k: creations and updates by key,
// then deletions (of replaced objects, then of unwanted ones) by key.
func diffKind(k state.Kind, desired *state.State, obs *state.Observed) (puts, dels []Change) {
	// Objects are compared in no order and the changes sorted by key: on
	// a node of thousands of objects, sorting them all cost more than
	// comparing them.
	var kdels, gone []Change
	kputs := make([]Change, 0, desired.Count(k))
	found := 0
	for key, want := range desired.All(k) {
		have := obs.Owned.Get(k, key)
		if have == nil {
			if k == state.KindNetns && obs.Foreign.Netns[key] {
				continue // a namespace that exists and is not ours is used as it is
			}
			kputs = append(kputs, Change{Action: Create, Kind: k.String(), Key: want.Key(), Owner: want.Owner(),
				Attrs: want.Attrs(), Desired: want})
			continue
		}
		found++
		diff := state.Diff(have, want)
		if len(diff) == 0 {
			continue
		}
		act := Update
		for _, c := range diff {
			if want.Immutable(c.Name) {
				act = Replace
			}
		}
		c := Change{Action: act, Kind: k.String(), Key: want.Key(), Owner: want.Owner(), Changes: diff,
			Desired: want, Observed: have}
		if act == Replace {
			c.Attrs = want.Attrs()
			kdels = append(kdels, Change{Action: Delete, Kind: k.String(), Key: have.Key(), Observed: have})
		}
		kputs = append(kputs, c)
	}
	// Keys are unique: when every observed object was found, none is
	// unwanted.
	if found < obs.Owned.Count(k) {
		for key, have := range obs.Owned.All(k) {
			if desired.Get(k, key) == nil {
				gone = append(gone, Change{Action: Delete, Kind: k.String(), Key: have.Key(), Owner: have.Owner(), Observed: have})
			}
		}
	}
	return appendByKey(nil, kputs), appendByKey(appendByKey(nil, kdels), gone)
}

// stableSorted sorts cs stably by compare, in place, and returns it. It
// sorts indexes, ties broken by position, then moves each change once:
// a change is large to move, and a plan at scale holds thousands.
func stableSorted(cs []Change, compare func(a, b *Change) int) []Change {
	from := make([]int32, len(cs)) // from[i]: the index of the change that goes to i
	for i := range from {
		from[i] = int32(i)
	}
	slices.SortFunc(from, func(i, j int32) int { return cmp.Or(compare(&cs[i], &cs[j]), cmp.Compare(i, j)) })
	// Follow each cycle of the permutation, holding one change aside.
	for i := range from {
		if from[i] == int32(i) {
			continue
		}
		held, j := cs[i], int32(i)
		for from[j] != int32(i) {
			next := from[j]
			cs[j], from[j] = cs[next], j
			j = next
		}
		cs[j], from[j] = held, j
	}
	return cs
}

// appendByKey appends changes of one kind to out in key order (keys are
// unique among them); with out nil, it sorts cs in place.
func appendByKey(out, cs []Change) []Change {
	sorted := stableSorted(cs, func(a, b *Change) int { return strings.Compare(a.Key, b.Key) })
	if out == nil {
		return sorted
	}
	return append(out, sorted...)
}

// kindOf is the kind of c's object, or the one c.Kind names (a change
// read back from JSON carries no object).
func KindOf(c Change) state.Kind { return kindOf(&c) }

// kindOf is KindOf without copying the change (sorts call it often).
func kindOf(c *Change) state.Kind {
	if c.Desired != nil {
		return c.Desired.Kind()
	}
	if c.Observed != nil {
		return c.Observed.Kind()
	}
	for _, k := range state.Kinds() {
		if k.String() == c.Kind {
			return k
		}
	}
	return 0
}

// linkRank orders link creation: bridges and tunnels before the veths
// that may be their ports.
func linkRank(o state.Object) int {
	if l, ok := o.(*state.Link); ok && l.Type != state.LinkVeth && l.Type != state.LinkMacvlan && l.Type != state.LinkIPvlan {
		return 0
	}
	return 1
}

// markImplied marks deletions that a namespace deletion performs anyway:
// objects inside the namespace, and host veth ends whose peer is in it
// (deleting a namespace tears its veths down far faster than deleting
// links one by one). Objects also wanted again (a replace) stay explicit.
func markImplied(dels []Change, desired *state.State) {
	gone := map[string]bool{}
	for _, c := range dels {
		if c.Kind == state.KindNetns.String() {
			if n := c.Observed.(*state.Netns); n.Owned {
				gone[n.Ref] = true
			}
		}
	}
	for i := range dels {
		c := &dels[i]
		if c.Kind == state.KindNetns.String() || desired.Get(KindOf(*c), c.Key) != nil {
			continue
		}
		switch o := c.Observed.(type) {
		case *state.Link:
			if gone[o.NS] {
				c.ImpliedBy = o.NS
			} else if o.Type == state.LinkVeth && gone[o.PeerNS] {
				c.ImpliedBy = o.PeerNS
			}
		case *state.Addr:
			if gone[o.NS] {
				c.ImpliedBy = o.NS
			}
		case *state.Neigh:
			if gone[o.NS] {
				c.ImpliedBy = o.NS
			}
		case *state.Route:
			if gone[o.NS] {
				c.ImpliedBy = o.NS
			}
		}
	}
}

// clashes lists desired objects that foreign objects are in the way of.
// Objects are visited in no order and the errors of a kind sorted by key.
func clashes(desired *state.State, obs *state.Observed) error {
	var errs []error
	var found []clash
	for key, o := range desired.All(state.KindNetns) {
		if n := o.(*state.Netns); obs.Foreign.Netns[key] && !n.Adopt {
			found = append(found, clash{key, fmt.Errorf("%w: %s: netns %q exists and netreconcile did not create it; "+
				"set adoptNetns: true on the pod to use it", ErrForeignNetns, n.OwnerK, n.Ref)})
		}
	}
	errs, found = appendClashes(errs, found), nil
	for key, o := range desired.All(state.KindLink) {
		if t, ok := obs.Foreign.Links[key]; ok {
			found = append(found, clash{key, fmt.Errorf("%w: %s (%s) exists", ErrClash, o.(*state.Link), t)})
		}
		if l := o.(*state.Link); l.Type == state.LinkVeth && l.PeerName != "" {
			if t, ok := obs.Foreign.Links[state.LinkKey(l.PeerNS, l.PeerName)]; ok {
				found = append(found, clash{key, fmt.Errorf("%w: link %s in %s (%s) exists", ErrClash, l.PeerName, l.PeerNS, t)})
			}
		}
		if l := o.(*state.Link); l.Type == state.LinkVXLAN {
			id := fmt.Sprintf("%d/%d", l.VNI, l.Port)
			for _, fk := range sortedKeys(obs.Foreign.VXLAN) {
				if obs.Foreign.VXLAN[fk] == id && strings.HasPrefix(fk, state.LinkKey(l.NS, "")) {
					found = append(found, clash{key, fmt.Errorf("%w: vxlan device %s already uses VNI %d and UDP port %d (wanted by %s)",
						ErrClash, fk, l.VNI, l.Port, l)})
				}
			}
		}
	}
	errs, found = appendClashes(errs, found), nil
	for key, o := range desired.All(state.KindAddr) {
		a := o.(*state.Addr)
		if link, ok := obs.Foreign.Addrs[state.AddrKey(a.NS, a.Prefix.Addr())]; ok {
			found = append(found, clash{key, fmt.Errorf("%w: address %s is on link %s", ErrClash, a.Prefix.Addr(), link)})
		}
	}
	errs, found = appendClashes(errs, found), nil
	for key, o := range desired.All(state.KindRoute) {
		if proto, ok := obs.Foreign.Routes[key]; ok {
			found = append(found, clash{key, fmt.Errorf("%w: %s exists with protocol %d", ErrClash, o, proto)})
		}
	}
	return errors.Join(appendClashes(errs, found)...)
}

// clash is an error about the desired object with key.
type clash struct {
	key string
	err error
}

// appendClashes appends the errors of clashes of one kind to errs, sorted
// by key, those of one object in the order found.
func appendClashes(errs []error, cs []clash) []error {
	slices.SortStableFunc(cs, func(a, b clash) int { return strings.Compare(a.key, b.key) })
	for _, c := range cs {
		errs = append(errs, c.err)
	}
	return errs
}

// NS returns the namespace the changed object lives in.
func (c Change) NS() string {
	o := c.Desired
	if o == nil {
		o = c.Observed
	}
	switch v := o.(type) {
	case *state.Link:
		return v.NS
	case *state.Addr:
		return v.NS
	case *state.Neigh:
		return v.NS
	case *state.Route:
		return v.NS
	case *state.Sysctl:
		return v.NS
	case *state.Masquerade:
		return v.NS
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// readdOnLinkLoss re-adds addresses, neighbours and routes of links that
// are deleted and created again (a replace, or a pod's eth0 changing type
// with its mode): the kernel removes them with the old link, even those
// that are otherwise unchanged. A veth takes its pod end along. Datapath
// objects on such a link are redone too: the fast-path endpoint holds the
// old ifindex, and a program attachment dies with its interface.
func readdOnLinkLoss(desired *state.State, obs *state.Observed, dels, puts []Change) []Change {
	lost := map[string]string{}
	for _, c := range dels {
		l, ok := c.Observed.(*state.Link)
		if !ok {
			continue
		}
		lost[l.Key()] = l.Key()
		if l.Type == state.LinkVeth && l.PeerNS != "" && l.PeerNS != "?" {
			lost[state.LinkKey(l.PeerNS, l.PeerName)] = l.Key()
		}
	}
	if len(lost) == 0 {
		return nil
	}
	planned := map[string]bool{}
	for _, c := range puts {
		planned[c.Kind+"|"+c.Key] = true
	}
	var out []Change
	for _, k := range []state.Kind{state.KindAddr, state.KindNeigh, state.KindRoute, state.KindEndpoint, state.KindAttach} {
		for _, want := range desired.Of(k) {
			var link string
			switch v := want.(type) {
			case *state.Addr:
				link = state.LinkKey(v.NS, v.Link)
			case *state.Neigh:
				link = state.LinkKey(v.NS, v.Link)
			case *state.Route:
				link = state.LinkKey(v.NS, v.Dev)
			case *state.Endpoint:
				link = state.LinkKey(state.NodeNS, v.Dev)
			case *state.Attach:
				link = state.LinkKey(v.NS, v.IfName)
			}
			gone, ok := lost[link]
			if !ok || planned[k.String()+"|"+want.Key()] || obs.Owned.Get(k, want.Key()) == nil {
				continue
			}
			out = append(out, Change{Action: Update, Kind: k.String(), Key: want.Key(), Owner: want.Owner(),
				Desired: want, Observed: obs.Owned.Get(k, want.Key()),
				Reason: "re-added: the kernel removes it with link " + gone + ", which is deleted"})
		}
	}
	return out
}

// readdOnAddrLoss re-adds routes and neighbours on links that lose an
// address: when a device's last IPv4 address goes, the kernel flushes its
// routes and neighbour entries, even ones that are otherwise unchanged.
func readdOnAddrLoss(desired *state.State, obs *state.Observed, dels, puts []Change) []Change {
	losing := map[string]bool{}
	for _, c := range dels {
		if a, ok := c.Observed.(*state.Addr); ok {
			losing[state.LinkKey(a.NS, a.Link)] = true
		}
	}
	if len(losing) == 0 {
		return nil
	}
	planned := map[string]bool{}
	for _, c := range puts {
		planned[c.Kind+"|"+c.Key] = true
	}
	var out []Change
	for _, k := range []state.Kind{state.KindNeigh, state.KindRoute} {
		for _, want := range desired.Of(k) {
			var link string
			switch v := want.(type) {
			case *state.Neigh:
				link = state.LinkKey(v.NS, v.Link)
			case *state.Route:
				link = state.LinkKey(v.NS, v.Dev)
			}
			if !losing[link] || planned[k.String()+"|"+want.Key()] || obs.Owned.Get(k, want.Key()) == nil {
				continue
			}
			out = append(out, Change{Action: Update, Kind: k.String(), Key: want.Key(), Owner: want.Owner(),
				Desired: want, Observed: obs.Owned.Get(k, want.Key()),
				Reason: "re-added: the kernel drops it with the address it depends on"})
		}
	}
	return out
}

// impliedByDatapath marks deletions that destroying the datapath performs.
func impliedByDatapath(dels []Change) {
	gone := ""
	for _, c := range dels {
		if d, ok := c.Observed.(*state.Datapath); ok && c.Action == Delete {
			gone = d.PinDir
		}
	}
	if gone == "" {
		return
	}
	for i := range dels {
		switch dels[i].Observed.(type) {
		case *state.Service, *state.Endpoint, *state.Attach, *state.PolicyIdentity, *state.PodPolicy, *state.PolicyRevision:
			if dels[i].ImpliedBy == "" {
				dels[i].ImpliedBy = gone
			}
		}
	}
}
