package apply

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/reconcile/internal/dpconv"
	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/state"
)

// dpHolder opens the node's datapath once per apply, for all workers.
// Map changes use the maps alone (datapath.Inspect); only attaching
// programs or (re)creating the datapath loads the programs, which means
// verifying them. A datapath step opens the maps at once and loads the
// programs in the background (seconds of CPU for a new build), so that
// the maps are filled and the pods made meanwhile; attaching waits.
type dpHolder struct {
	pinDir string
	mode   string // --attach-mode
	mu     sync.Mutex
	dp     *datapath.Datapath
	full   bool // dp has its programs loaded
	notes  []string
	// sizes are the map sizes the step creating or replacing the datapath
	// wants; nil: those of the maps pinned (the plan replaces the
	// datapath when they differ from the file's).
	sizes *datapath.Sizes
	// spare are datapaths that a fuller one replaced: closed at the end,
	// as a worker may still be writing through one.
	spare []*datapath.Datapath
	// loading is closed once the background load ended (loadErr says how).
	loading chan struct{}
	loadErr error
}

// setSizes records the map sizes of the datapath about to be created.
func (h *dpHolder) setSizes(d *state.Datapath) error {
	m, err := dpconv.Parse(d.MapSizes)
	if err != nil {
		return err
	}
	s := dpconv.ToDatapath(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sizes = &s
	return nil
}

// sizesLocked are the map sizes to open with; h.mu is held.
func (h *dpHolder) sizesLocked() datapath.Sizes {
	if h.sizes != nil {
		return *h.sizes
	}
	return datapath.PinnedSizes(h.pinDir)
}

// use makes dp the datapath in use; h.mu is held.
func (h *dpHolder) use(dp *datapath.Datapath, full bool) {
	if h.dp != nil {
		h.spare = append(h.spare, h.dp)
	}
	h.dp, h.full = dp, full
	h.notes = append(h.notes, dp.Notes()...)
}

func (h *dpHolder) get(needPrograms bool) (*datapath.Datapath, error) {
	if needPrograms {
		if err := h.wait(); err != nil {
			return nil, err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dp != nil && (h.full || !needPrograms) {
		return h.dp, nil
	}
	sizes := h.sizesLocked()
	if !needPrograms {
		// (Not on an older build's pins: writes to the maps it lacks
		// would go to Inspect's stand-ins; Open adds them.)
		dp, reason, err := datapath.InspectWith(h.pinDir, sizes)
		if err == nil && dp != nil && reason == "" && dp.Complete() {
			h.use(dp, false)
			return dp, nil
		}
		if dp != nil {
			dp.Close()
		}
	}
	dp, err := datapath.OpenWith(h.pinDir, sizes)
	if err != nil {
		return nil, fmt.Errorf("datapath.OpenWith: %w", err)
	}
	dp.SetAttachMode(h.mode)
	h.use(dp, true)
	return dp, nil
}

// openMaps serves a step that creates or updates the datapath: it opens
// (creating, replacing) the maps now, and loads the programs against them
// in the background. A datapath already open with its programs is kept.
func (h *dpHolder) openMaps() (*datapath.Datapath, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dp != nil && (h.full || h.loading != nil) {
		return h.dp, nil
	}
	sizes := h.sizesLocked()
	dp, err := datapath.OpenMapsWith(h.pinDir, sizes)
	if err != nil {
		return nil, fmt.Errorf("datapath.OpenMapsWith: %w", err)
	}
	h.use(dp, false)
	done := make(chan struct{})
	h.loading = done
	go func() {
		defer close(done)
		full, err := datapath.OpenWith(h.pinDir, sizes)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.loadErr = fmt.Errorf("datapath.OpenWith: %w", err)
			return
		}
		full.SetAttachMode(h.mode)
		h.use(full, true)
	}()
	return dp, nil
}

// loadingNow reports whether programs are being loaded in the background.
func (h *dpHolder) loadingNow() bool {
	h.mu.Lock()
	ch := h.loading
	h.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// wait waits for a background load, and returns its error.
func (h *dpHolder) wait() error {
	h.mu.Lock()
	ch := h.loading
	h.mu.Unlock()
	if ch == nil {
		return nil
	}
	<-ch
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.loadErr
}

// takeNotes returns what opening the datapath replaced or upgraded, once.
func (h *dpHolder) takeNotes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.notes
	h.notes = nil
	return n
}

// close waits for a background load and closes every datapath opened.
func (h *dpHolder) close() {
	_ = h.wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, dp := range append(h.spare, h.dp) {
		if dp != nil {
			dp.Close()
		}
	}
	h.dp, h.full, h.spare, h.loading, h.loadErr = nil, false, nil, nil, nil
}

// datapathStep applies one change to a datapath object.
func (a *applier) datapathStep(c plan.Change) error {
	obj := c.Desired
	if c.Action == plan.Delete {
		obj = c.Observed
	}
	if d, ok := obj.(*state.Datapath); ok && c.Action != plan.Delete {
		if err := a.dp.setSizes(d); err != nil {
			return err
		}
	}
	if d, ok := obj.(*state.Datapath); ok && (c.Action == plan.Delete || c.Action == plan.Replace) {
		if err := a.destroyDatapath(c, d); err != nil || c.Action == plan.Delete {
			return err
		}
	}
	_, isAttach := obj.(*state.Attach)
	var dp *datapath.Datapath
	var err error
	if _, ok := obj.(*state.Datapath); ok && c.Action != plan.Delete {
		dp, err = a.dp.openMaps()
	} else {
		dp, err = a.dp.get(isAttach && c.Action != plan.Delete)
	}
	if err != nil {
		return err
	}
	for _, n := range a.dp.takeNotes() {
		a.log.Info("datapath", "note", n)
	}
	if c.Action == plan.Delete {
		return deleteEntry(dp, c, obj)
	}
	return a.writeEntry(dp, c, obj)
}

// destroyDatapath removes datapath d (deleted or replaced).
func (a *applier) destroyDatapath(c plan.Change, d *state.Datapath) error {
	a.dp.close()
	why := ""
	if have, ok := c.Observed.(*state.Datapath); ok && !have.Reusable {
		_, why, _ = datapath.Inspect(d.PinDir) // for the log: the pins are about to go
	}
	if err := datapath.Destroy(d.PinDir); err != nil {
		return fmt.Errorf("datapath.Destroy: %w", err)
	}
	if why != "" {
		a.log.Info("datapath", "note", fmt.Sprintf("removed the datapath pinned in %s by a build with another map layout (%s): "+
			"services, endpoints and connection tracking start empty", d.PinDir, why))
	}
	return nil
}

// deleteEntry removes datapath object obj from dp.
func deleteEntry(dp *datapath.Datapath, c plan.Change, obj state.Object) error {
	switch o := obj.(type) {
	case *state.Service:
		key := datapath.ServiceKey{IP: o.IP, Port: o.Port, Proto: dpconv.ProtoNumber(o.Proto)}
		return called("DeleteService", dp.DeleteService(key))
	case *state.Endpoint:
		return called("DeleteEndpoint", dp.DeleteEndpoint(o.IP))
	case *state.PolicyIdentity, *state.PodPolicy, *state.PolicyRevision:
		return policyStep(dp, c)
	case *state.Attach:
		return called("Detach", dp.Detach(o.Name))
	}
	return fmt.Errorf("unknown datapath object %T", obj)
}

// writeEntry creates or updates datapath object obj in dp.
func (a *applier) writeEntry(dp *datapath.Datapath, c plan.Change, obj state.Object) error {
	switch o := obj.(type) {
	case *state.Datapath:
		conf, err := dp.Config()
		if err != nil {
			return fmt.Errorf("read the datapath's configuration: %w", err)
		}
		conf.FastPath = o.FastPath
		conf.ConntrackPerSource = o.ConntrackPerSource
		conf.NodeAddr = o.NodeAddr
		return called("SetConfig", dp.SetConfig(conf))
	case *state.Service:
		svc, err := toService(o)
		if err != nil {
			return err
		}
		return called("SetService", dp.SetService(svc))
	case *state.Endpoint:
		_, idx, err := a.linkIndex(state.NodeNS, o.Dev)
		if err != nil {
			return err
		}
		return called("SetEndpoint", dp.SetEndpoint(o.IP, datapath.Endpoint{IfIndex: idx}))
	case *state.PolicyIdentity, *state.PodPolicy, *state.PolicyRevision:
		return policyStep(dp, c)
	case *state.Attach:
		return a.attach(dp, o)
	}
	return fmt.Errorf("unknown datapath object %T", obj)
}

// attach attaches the program of o, its source bound first.
func (a *applier) attach(dp *datapath.Datapath, o *state.Attach) error {
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
	return called("Attach", dp.Attach(ns, o.IfName, dir))
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
	// Through this pass's handle of the pod's namespace: its addresses
	// and routes, which follow, use it too.
	h, err := a.h.Get(o.PodNS)
	if err != nil {
		return fmt.Errorf("bind %s: %w", o.Name, err)
	}
	l, err := h.LinkByName(drivers.PodIfName)
	if err != nil {
		return fmt.Errorf("bind %s: look up %s in netns %q: %w", o.Name, drivers.PodIfName, o.PodNS, err)
	}
	src := datapath.Source{IP: ip, MAC: l.Attrs().HardwareAddr}
	return called("bind "+o.Name+": Bind", dp.Bind(ns, o.IfName, src))
}

// toService is service port o as the datapath programs it.
func toService(o *state.Service) (datapath.Service, error) {
	svc := datapath.Service{Key: datapath.ServiceKey{IP: o.IP, Port: o.Port, Proto: dpconv.ProtoNumber(o.Proto)},
		Affinity: o.Affinity, SNAT: o.SNAT}
	if o.Affinity {
		svc.AffinityTimeout = time.Duration(o.Timeout()) * time.Second
	}
	for _, b := range o.Backends {
		ap, err := netip.ParseAddrPort(b)
		if err != nil {
			return datapath.Service{}, fmt.Errorf("service %s: backend %q: %w", o.Key(), b, err)
		}
		svc.Backends = append(svc.Backends, datapath.Backend{IP: ap.Addr(), Port: ap.Port()})
	}
	return svc, nil
}

// minServiceBatch is the shortest run of service changes written at once:
// a small change keeps its own steps.
const minServiceBatch = 64

// serviceRun counts the service ports created or updated at the start of
// cs.
func serviceRun(cs []plan.Change) int {
	for i, c := range cs {
		if _, ok := c.Desired.(*state.Service); !ok || (c.Action != plan.Create && c.Action != plan.Update) {
			return i
		}
	}
	return len(cs)
}

// setServices writes the service ports that changes cs create or update,
// at once.
func (a *applier) setServices(cs []plan.Change) error {
	svcs := make([]datapath.Service, len(cs))
	for i, c := range cs {
		var err error
		if svcs[i], err = toService(c.Desired.(*state.Service)); err != nil {
			return err
		}
	}
	dp, err := a.dp.get(false)
	if err != nil {
		return err
	}
	for _, n := range a.dp.takeNotes() {
		a.log.Info("datapath", "note", n)
	}
	return called("SetServices", dp.SetServices(svcs))
}
