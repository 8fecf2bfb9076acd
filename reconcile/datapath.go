package reconcile

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// The eBPF datapath as state objects. A node gets a datapath when the file
// has services or policies; then every pod on it has the programs attached
// (a pod can only reach a service through them), every clusterIP port is a
// Service entry whose backends are the selected pods on any node, and
// every local veth or bridge pod is an Endpoint for the fast path.

// datapathOwner owns the node-wide datapath object.
const datapathOwner = "datapath"

// wantsDatapath reports whether the file needs the eBPF datapath.
func wantsDatapath(r *spec.Resolved) bool { return len(r.Services) > 0 || len(r.Policies) > 0 }

// desiredDatapath adds the datapath objects of node n, which holds pods,
// to s.
func desiredDatapath(cfg *Config, r *spec.Resolved, n *drivers.Node, pods []spec.ResolvedPod,
	compiled func() (*compile.Program, error), s *state.State) error {
	if !wantsDatapath(r) {
		return nil
	}
	if err := s.Add(&state.Datapath{PinDir: cfg.BPFFS, FastPath: true, Reusable: true, MapSizes: sizesText(r.Maps),
		ConntrackPerSource: uint32(r.ConntrackPerSource),
		OwnerK:             datapathOwner}); err != nil {
		return err
	}
	// Services select pods of their own namespace, on any node, by labels.
	idx := spec.NewPodIndex(r.Pods, nil)
	// Backends depend only on a service's namespace and selector and on
	// the port's target and protocol: services that share these (one per
	// port of a workload, say) share the work.
	known := map[string][]string{}
	ports := 0
	for _, svc := range r.Services {
		ports += len(svc.Ports)
	}
	s.Grow(state.KindService, ports)
	use := &MapUse{Services: ports}
	for i := range r.Services {
		svc := &r.Services[i]
		for _, port := range svc.Ports {
			key := backendsKey(svc, port)
			bs, ok := known[key]
			if !ok {
				bs = backends(r.Pods, idx.Candidates(svc.Namespace, svc.Selector), svc, port)
				known[key] = bs
			}
			use.Backends += len(bs)
			// (each object gets its own copy of the shared list)
			obj := &state.Service{IP: svc.ClusterIP, Port: uint16(port.Port), Proto: port.Protocol,
				Backends: slices.Clone(bs), Affinity: svc.SessionAffinity == "ClientIP",
				OwnerK: "service/" + svc.Key}
			if err := s.Add(obj); err != nil {
				return err
			}
		}
	}
	prog, err := compiled()
	if err != nil {
		return err
	}
	use.policyUse(prog)
	for i := range pods {
		if hasEndpoint(&pods[i]) {
			use.Endpoints++
		}
	}
	if err := capacityError(n.Name, use, r.Maps); err != nil {
		return err
	}
	if err := desiredPolicy(cfg, prog, s); err != nil {
		return err
	}
	s.Grow(state.KindEndpoint, len(pods))
	s.Grow(state.KindAttach, len(datapath.HostDirections)*len(pods))
	for i := range pods {
		p := &pods[i]
		owner := drivers.PodOwner(p)
		var objs []state.Object
		switch p.Mode {
		case spec.ModeVeth, spec.ModeBridge:
			host := drivers.HostIfName(n.Name, p.Key)
			objs = append(objs, &state.Endpoint{IP: p.IP, Dev: host, OwnerK: owner})
			for _, dir := range datapath.HostDirections {
				objs = append(objs, attachObject(cfg.NodeNetns, state.NodeNS, host, dir, owner, p))
			}
		default:
			for _, dir := range datapath.PodDirections {
				objs = append(objs, attachObject(p.Netns, p.Netns, drivers.PodIfName, dir, owner, p))
			}
		}
		for _, o := range objs {
			if o == nil {
				return fmt.Errorf("pod %s: bad attachment name", p.Key)
			}
			if err := s.Add(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// backendsKey names what the backends of one port of svc depend on.
func backendsKey(svc *spec.ResolvedService, port spec.ServicePort) string {
	keys := make([]string, 0, len(svc.Selector))
	for k := range svc.Selector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.Grow(64)
	b.WriteString(svc.Namespace)
	for _, k := range keys {
		b.WriteString("\x00" + k + "\x00" + svc.Selector[k])
	}
	b.WriteString("\x00" + port.Protocol)
	if port.TargetPort.IsString {
		b.WriteString("\x00name " + port.TargetPort.StrVal)
	} else {
		b.WriteString("\x00port " + strconv.Itoa(port.TargetPort.IntVal))
	}
	return b.String()
}

// attachObject is a program attachment of pod p; the hook of packets
// leaving the pod carries its source binding.
func attachObject(nsRef, ns, ifname string, dir datapath.Direction, owner string, p *spec.ResolvedPod) state.Object {
	name, err := datapath.AttachmentName(nsRef, ifname, dir)
	if err != nil {
		return nil
	}
	a := &state.Attach{Name: name, NS: ns, IfName: ifname, Direction: dir.String(), Live: true, OwnerK: owner}
	if dir.FromPod() {
		a.Source, a.PodNS = p.IP.String(), p.Netns
	}
	return a
}

// Backends lists "ip:port" of the pods that back one port of svc: pods of
// its namespace, on any node, matching its selector; a named targetPort
// resolves per pod, and pods that do not declare it are left out, as
// Kubernetes does. A service without a selector has no backends.
func Backends(r *spec.Resolved, svc *spec.ResolvedService, port spec.ServicePort) []string {
	return backends(r.Pods, spec.NewPodIndex(r.Pods, nil).Candidates(svc.Namespace, svc.Selector), svc, port)
}

// backends is Backends among the pods at indexes cands (spec's rule:
// ResolvedService.Selects, ServicePort.TargetOf).
func backends(pods []spec.ResolvedPod, cands []int, svc *spec.ResolvedService, port spec.ServicePort) []string {
	out := []string{}
	for _, i := range cands {
		p := &pods[i]
		if !svc.Selects(p) {
			continue
		}
		if target, ok := port.TargetOf(p); ok {
			out = append(out, netip.AddrPortFrom(p.IP, uint16(target)).String())
		}
	}
	sort.Strings(out)
	return out
}

// observeDatapath reads what is programmed in the node's pin directory
// without changing anything, taking from cached (may be nil) the parts it
// holds. It runs beside the pod namespace workers, so its objects wait in
// o.dp for node to add them. names and byIndex are the node namespace's
// links.
func (o *observer) observeDatapath(desired *state.State, names map[string]int, byIndex map[int]string, cached *dpObserved) error {
	pinDir := o.cfg.BPFFS
	if cached != nil && resized(desired, cached.entries) {
		cached = nil
	}
	if cached != nil && cached.entries != nil && cached.atts != nil && cached.attsOn(names) {
		o.dp.reuse(cached, desired, names, byIndex, true)
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
			o.dp.put(&state.Datapath{PinDir: pinDir, Reusable: false, OwnerK: datapathOwner})
		} else if empty, _ := dirEmpty(pinDir); !empty {
			// leftovers without a datapath (links of a destroyed one)
			o.dp.put(&state.Datapath{PinDir: pinDir, Reusable: false, OwnerK: datapathOwner})
		}
		o.dp.atts = []state.Object{}
		return nil
	}
	defer dp.Close()
	if cached != nil && cached.entries != nil {
		o.dp.reuse(cached, desired, names, byIndex, false)
	} else if err := o.observeEntries(dp, desired, byIndex); err != nil {
		return err
	}
	if resized(desired, o.dp.entries) {
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
		obj.OwnerK = ownerIn(desired, obj)
		o.dp.atts = append(o.dp.atts, obj)
		o.dp.attIndex[obj.Name] = a.IfIndex
	}
	return nil
}

// observeEntries reads the datapath's configuration and map entries.
func (o *observer) observeEntries(dp *datapath.Datapath, desired *state.State, byIndex map[int]string) error {
	start := time.Now()
	conf, err := dp.Config()
	if err != nil {
		return err
	}
	o.dp.entries = []state.Object{&state.Datapath{PinDir: o.cfg.BPFFS, FastPath: conf.FastPath, Reusable: true,
		MapSizes: sizesText(fileSizes(dp.Sizes())), ConntrackPerSource: conf.ConntrackPerSource, OwnerK: datapathOwner}}
	svcs, err := dp.Services()
	if err != nil {
		return err
	}
	for k, s := range svcs {
		obj := &state.Service{IP: k.IP, Port: k.Port, Proto: protoName(k.Proto), Affinity: s.Affinity, Backends: []string{}}
		for _, b := range s.Backends {
			obj.Backends = append(obj.Backends, netip.AddrPortFrom(b.IP, b.Port).String())
		}
		sort.Strings(obj.Backends)
		obj.OwnerK = ownerIn(desired, obj)
		o.dp.put(obj)
	}
	eps, err := dp.Endpoints()
	if err != nil {
		return err
	}
	o.dp.epIndex = make(map[string]int, len(eps))
	for ip, e := range eps {
		obj := &state.Endpoint{IP: ip, Dev: byIndex[e.IfIndex]}
		obj.OwnerK = ownerIn(desired, obj)
		o.dp.put(obj)
		o.dp.epIndex[obj.Key()] = e.IfIndex
	}
	o.dp.phases = append(o.dp.phases, "datapathMaps", time.Since(start))
	start = time.Now()
	defer func() { o.dp.phases = append(o.dp.phases, "policyMaps", time.Since(start)) }()
	return o.observePolicy(dp, desired)
}

// resized reports whether the datapath among entries has other map sizes
// than the desired one: the plan replaces it.
func resized(desired *state.State, entries []state.Object) bool {
	for _, obj := range entries {
		if have, ok := obj.(*state.Datapath); ok {
			want, _ := desired.Get(state.KindDatapath, have.PinDir).(*state.Datapath)
			return want != nil && have.Reusable && want.MapSizes != have.MapSizes
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
func (d *dpObserved) reuse(c *dpObserved, desired *state.State, names map[string]int, byIndex map[int]string, atts bool) {
	d.entries, d.epIndex = c.entries, c.epIndex
	for _, obj := range d.entries {
		setOwner(obj, desired)
		if ep, ok := obj.(*state.Endpoint); ok {
			ep.Dev = byIndex[indexOf(d.epIndex, ep.Key(), ep.Dev, names)]
		}
	}
	if atts {
		d.atts, d.attIndex = c.atts, c.attIndex
		for _, obj := range d.atts {
			setOwner(obj, desired)
		}
	}
}

func ownerIn(desired *state.State, o state.Object) string {
	if d := desired.Get(o.Kind(), o.Key()); d != nil {
		return d.Owner()
	}
	return ""
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

var protoNumbers = map[string]uint8{"TCP": 6, "UDP": 17, "SCTP": 132}

func protoName(p uint8) string {
	for name, n := range protoNumbers {
		if n == p {
			return name
		}
	}
	return fmt.Sprint(p)
}

// dpHolder opens the node's datapath once per apply, for all workers.
// Map changes use the maps alone (datapath.Inspect); only attaching
// programs or (re)creating the datapath loads the programs, which means
// verifying them.
type dpHolder struct {
	pinDir string
	tc     bool // prefer clsact to tcx
	mu     sync.Mutex
	dp     *datapath.Datapath
	full   bool // dp has its programs loaded
	notes  []string
	// sizes are the map sizes the step creating or replacing the datapath
	// wants; nil: those of the maps pinned (the plan replaces the
	// datapath when they differ from the file's).
	sizes *datapath.Sizes
}

// setSizes records the map sizes of the datapath about to be created.
func (h *dpHolder) setSizes(d *state.Datapath) error {
	m, err := parseSizes(d.MapSizes)
	if err != nil {
		return err
	}
	s := dpSizes(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sizes = &s
	return nil
}

func (h *dpHolder) get(needPrograms bool) (*datapath.Datapath, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dp != nil && (h.full || !needPrograms) {
		return h.dp, nil
	}
	if h.dp != nil {
		h.dp.Close()
		h.dp = nil
	}
	sizes := datapath.PinnedSizes(h.pinDir)
	if h.sizes != nil {
		sizes = *h.sizes
	}
	if !needPrograms {
		// (Not on an older build's pins: writes to the maps it lacks
		// would go to Inspect's stand-ins; Open adds them.)
		dp, reason, err := datapath.InspectWith(h.pinDir, sizes)
		if err == nil && dp != nil && reason == "" && dp.Complete() {
			h.dp = dp
			return dp, nil
		}
		if dp != nil {
			dp.Close()
		}
	}
	dp, err := datapath.OpenWith(h.pinDir, sizes)
	if err != nil {
		return nil, err
	}
	dp.PreferTC = h.tc
	h.dp, h.full, h.notes = dp, true, dp.Notes()
	return dp, nil
}

// takeNotes returns what opening the datapath replaced or upgraded, once.
func (h *dpHolder) takeNotes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.notes
	h.notes = nil
	return n
}

func (h *dpHolder) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dp != nil {
		h.dp.Close()
		h.dp = nil
	}
}

// datapathStep applies one change to a datapath object.
func (a *applier) datapathStep(c Change) error {
	obj := c.Desired
	if c.Action == Delete {
		obj = c.Observed
	}
	if d, ok := obj.(*state.Datapath); ok && c.Action != Delete {
		if err := a.dp.setSizes(d); err != nil {
			return err
		}
	}
	if d, ok := obj.(*state.Datapath); ok && (c.Action == Delete || c.Action == Replace) {
		a.dp.close()
		why := ""
		if have, ok := c.Observed.(*state.Datapath); ok && !have.Reusable {
			_, why, _ = datapath.Inspect(d.PinDir) // for the log: the pins are about to go
		}
		if err := datapath.Destroy(d.PinDir); err != nil {
			return err
		}
		if why != "" {
			a.log.Info("datapath", "note", fmt.Sprintf("removed the datapath pinned in %s by a build with another map layout (%s): "+
				"services, endpoints and connection tracking start empty", d.PinDir, why))
		}
		if c.Action == Delete {
			return nil
		}
	}
	_, isAttach := obj.(*state.Attach)
	_, isDatapath := obj.(*state.Datapath)
	dp, err := a.dp.get((isAttach || isDatapath) && c.Action != Delete)
	if err != nil {
		return err
	}
	for _, n := range a.dp.takeNotes() {
		a.log.Info("datapath", "note", n)
	}
	switch o := obj.(type) {
	case *state.Datapath:
		conf, err := dp.Config()
		if err != nil {
			return err
		}
		conf.FastPath = o.FastPath
		conf.ConntrackPerSource = o.ConntrackPerSource
		return dp.SetConfig(conf)
	case *state.Service:
		key := datapath.ServiceKey{IP: o.IP, Port: o.Port, Proto: protoNumbers[o.Proto]}
		if c.Action == Delete {
			return dp.DeleteService(key)
		}
		svc := datapath.Service{Key: key, Affinity: o.Affinity}
		for _, b := range o.Backends {
			ap, err := netip.ParseAddrPort(b)
			if err != nil {
				return err
			}
			svc.Backends = append(svc.Backends, datapath.Backend{IP: ap.Addr(), Port: ap.Port()})
		}
		return dp.SetService(svc)
	case *state.Endpoint:
		if c.Action == Delete {
			return dp.DeleteEndpoint(o.IP)
		}
		_, idx, err := a.linkIndex(state.NodeNS, o.Dev)
		if err != nil {
			return err
		}
		return dp.SetEndpoint(o.IP, datapath.Endpoint{IfIndex: idx})
	case *state.PolicyIdentity, *state.PodPolicy, *state.PolicyRevision:
		return policyStep(dp, c)
	case *state.Attach:
		if c.Action == Delete {
			return dp.Detach(o.Name)
		}
		dir, err := datapath.ParseDirection(o.Direction)
		if err != nil {
			return err
		}
		ns := o.NS
		if ns == state.NodeNS {
			ns = a.cfg.NodeNetns
		}
		if o.Source != "" {
			if err := a.bindSource(dp, o, ns); err != nil {
				return err
			}
		}
		return dp.Attach(ns, o.IfName, dir)
	}
	return fmt.Errorf("unknown datapath object %T", obj)
}

// bindSource binds the pod's address and MAC to the interface of o, before
// its program runs (bpf/guard.h drops what an unbound interface sends).
// The MAC is the pod's own interface's: the pod end of a veth pair, or the
// macvlan or ipvlan interface itself.
func (a *applier) bindSource(dp *datapath.Datapath, o *state.Attach, ns string) error {
	ip, err := netip.ParseAddr(o.Source)
	if err != nil {
		return fmt.Errorf("bind %s: source %q: %w", o.Name, o.Source, err)
	}
	mac, err := datapath.HardwareAddr(o.PodNS, drivers.PodIfName)
	if err != nil {
		return fmt.Errorf("bind %s: %w", o.Name, err)
	}
	return dp.Bind(ns, o.IfName, datapath.Source{IP: ip, MAC: mac})
}
