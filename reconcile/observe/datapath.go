package observe

import (
	"net/netip"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/reconcile/internal/dpconv"
	"github.com/netreconcile/netreconcile/state"
)

// observeDatapath reads what is programmed in the node's pin directory
// without changing anything, taking from cached (may be nil) the parts it
// holds. It runs beside the pod namespace workers, so its objects wait in
// o.dp for node to add them. names and byIndex are the node namespace's
// links.
func (o *observer) observeDatapath(scope *Scope, names map[string]int, byIndex map[int]string, cached *dpObserved) error {
	pinDir := o.cfg.BPFFS
	if cached != nil && resized(scope, cached.entries) {
		cached = nil
	}
	if cached != nil && cached.entries != nil && cached.atts != nil && cached.attsOn(names) {
		o.dp.reuse(cached, names, byIndex, true)
		return nil
	}
	if pinDir == "" {
		return nil
	}
	if _, err := os.Stat(pinDir); err != nil {
		return nil
	}
	start := time.Now()
	dp, reason, err := datapath.InspectWith(pinDir, datapath.PinnedSizes(pinDir))
	if err != nil {
		return err
	}
	o.dp.phases = append(o.dp.phases, "datapathOpen", time.Since(start))
	if dp == nil {
		if reason != "" {
			o.dp.put(&state.Datapath{PinDir: pinDir, Reusable: false, OwnerK: state.DatapathOwner})
		} else if empty, _ := dirEmpty(pinDir); !empty {
			// leftovers without a datapath (links of a destroyed one)
			o.dp.put(&state.Datapath{PinDir: pinDir, Reusable: false, OwnerK: state.DatapathOwner})
		}
		o.dp.atts = []state.Object{}
		return nil
	}
	defer dp.Close()
	if cached != nil && cached.entries != nil {
		o.dp.reuse(cached, names, byIndex, false)
	} else if err := o.observeEntries(dp, byIndex); err != nil {
		return err
	}
	if resized(scope, o.dp.entries) {
		// Replaced with maps of the file's sizes: everything in it is
		// made again.
		o.dp.entries = slices.DeleteFunc(o.dp.entries, func(obj state.Object) bool { _, ok := obj.(*state.Datapath); return !ok })
		o.dp.atts = []state.Object{}
		return nil
	}
	start = time.Now()
	atts, err := dp.Attachments(datapath.KnownLinks{o.cfg.NodeNetns: names})
	if err != nil {
		return err
	}
	o.dp.phases = append(o.dp.phases, "datapathAttachments", time.Since(start))
	o.dp.atts = []state.Object{}
	o.dp.attIndex = make(map[string]int, len(atts))
	for _, a := range atts {
		ns := a.Netns
		if ns == o.cfg.NodeNetns {
			ns = state.NodeNS
		}
		obj := &state.Attach{Name: a.Name, NS: ns, IfName: a.IfName, Direction: a.Direction.String(),
			Live: a.Current && !a.Defunct}
		if a.Source.IsValid() {
			obj.Source = a.Source.String()
		}
		o.dp.atts = append(o.dp.atts, obj)
		o.dp.attIndex[obj.Name] = a.IfIndex
	}
	return nil
}

// observeEntries reads the datapath's configuration and map entries.
func (o *observer) observeEntries(dp *datapath.Datapath, byIndex map[int]string) error {
	start := time.Now()
	conf, err := dp.Config()
	if err != nil {
		return err
	}
	o.dp.entries = []state.Object{&state.Datapath{PinDir: o.cfg.BPFFS, FastPath: conf.FastPath, Reusable: true,
		MapSizes: dpconv.Text(dpconv.FromDatapath(dp.Sizes())), ConntrackPerSource: conf.ConntrackPerSource,
		NodeAddr: conf.NodeAddr, OwnerK: state.DatapathOwner}}
	svcs, err := dp.Services()
	if err != nil {
		return err
	}
	for k, s := range svcs {
		obj := &state.Service{IP: k.IP, Port: k.Port, Proto: dpconv.ProtoName(k.Proto), Affinity: s.Affinity,
			AffinityTimeout: uint32(s.AffinityTimeout / time.Second), SNAT: s.SNAT, Backends: []string{}}
		for _, b := range s.Backends {
			obj.Backends = append(obj.Backends, netip.AddrPortFrom(b.IP, b.Port).String())
		}
		sort.Strings(obj.Backends)
		o.dp.put(obj)
	}
	eps, err := dp.Endpoints()
	if err != nil {
		return err
	}
	o.dp.epIndex = make(map[string]int, len(eps))
	for ip, e := range eps {
		obj := &state.Endpoint{IP: ip, Dev: byIndex[e.IfIndex]}
		o.dp.put(obj)
		o.dp.epIndex[obj.Key()] = e.IfIndex
	}
	o.dp.phases = append(o.dp.phases, "datapathMaps", time.Since(start))
	start = time.Now()
	defer func() { o.dp.phases = append(o.dp.phases, "policyMaps", time.Since(start)) }()
	return o.observePolicy(dp)
}

// resized reports whether the datapath among entries has other map sizes
// than the desired one: the plan replaces it.
func resized(scope *Scope, entries []state.Object) bool {
	for _, obj := range entries {
		if have, ok := obj.(*state.Datapath); ok {
			want, ok := scope.MapSizes[have.PinDir]
			return ok && have.Reusable && want != have.MapSizes
		}
	}
	return false
}

// dpObserved is what observeDatapath found, held until node adds it: the
// datapath itself and its map entries, and the attachments. A Cache keeps
// the two apart: attachments go with the links they are on, map entries
// change only when netreconcile writes them.
type dpObserved struct {
	entries []state.Object
	// epIndex is the ifindex each endpoint entry holds, named again from
	// the node's links on every pass (a link may be gone or renamed);
	// -1 for an entry written through, named by its desired Dev until
	// the next pass looks the index up.
	epIndex map[string]int
	atts    []state.Object
	// attIndex is the ifindex each attachment is on (-1 as for epIndex).
	attIndex map[string]int
	phases   []any
}

// attsOn reports whether the attachments kept in d are still on the node
// links they were read or written on: a link deleted, recreated or
// renamed since takes its attachment with it. names are the node
// namespace's links now.
func (d *dpObserved) attsOn(names map[string]int) bool {
	for _, obj := range d.atts {
		a := obj.(*state.Attach)
		if a.NS != state.NodeNS {
			continue // a pod namespace's: dropped when it is invalidated
		}
		if idx := indexOf(d.attIndex, a.Name, a.IfName, names); idx == 0 || names[a.IfName] != idx {
			return false
		}
	}
	return true
}

// indexOf returns the ifindex index holds for key; one written through
// (-1) is looked up as name among names now, and kept. 0: none.
func indexOf(index map[string]int, key, name string, names map[string]int) int {
	if idx, ok := index[key]; ok && idx >= 0 {
		return idx
	}
	idx := names[name]
	index[key] = idx
	return idx
}

func (d *dpObserved) put(obj state.Object) { d.entries = append(d.entries, obj) }

// putInto adds everything found to s, whose maps it sizes first: the
// entries number tens of thousands.
func (d *dpObserved) putInto(s *state.State) {
	n := map[state.Kind]int{}
	for _, objs := range [][]state.Object{d.entries, d.atts} {
		for _, o := range objs {
			n[o.Kind()]++
		}
	}
	for k, c := range n {
		s.Grow(k, c)
	}
	for _, objs := range [][]state.Object{d.entries, d.atts} {
		for _, o := range objs {
			s.Put(o)
		}
	}
}

// reuse takes the entries (and with atts the attachments) of a cached
// observation, owned as desired now, endpoints named from byIndex by the
// ifindex their entry holds.
func (d *dpObserved) reuse(c *dpObserved, names map[string]int, byIndex map[int]string, atts bool) {
	d.entries, d.epIndex = c.entries, c.epIndex
	for _, obj := range d.entries {
		if ep, ok := obj.(*state.Endpoint); ok {
			ep.Dev = byIndex[indexOf(d.epIndex, ep.Key(), ep.Dev, names)]
		}
	}
	if atts {
		d.atts, d.attIndex = c.atts, c.attIndex
	}
}

func dirEmpty(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return true, err
	}
	for _, e := range ents {
		if e.IsDir() {
			if empty, _ := dirEmpty(dir + "/" + e.Name()); !empty {
				return false, nil
			}
			continue
		}
		return false, nil
	}
	return true, nil
}
