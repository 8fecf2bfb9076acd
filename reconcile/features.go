package reconcile

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/kinds"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// featureModes lists the pod modes whose link type some kernels lack; the
// mode names are the link types. (Kernel features are "checked" here, never
// "probed": probe is the reachability command.)
var featureModes = []string{spec.ModeMacvlan, spec.ModeIPvlan}

// kernelFeatures fills the engine's kernel facts for the link types the
// node's pods need, once per engine, so that drivers' Check can refuse a
// mode before any change. (plan --observed takes them from the file's
// node_facts instead: see offlineFacts.)
func (e *Engine) kernelFeatures(r *spec.Resolved) (*drivers.Kernel, error) {
	k := e.kernel()
	for _, p := range r.PodsOn(e.Cfg.Node) {
		if _, done := k.LinkTypes[p.Mode]; done {
			continue
		}
		for _, typ := range featureModes {
			if p.Mode != typ {
				continue
			}
			ok, err := linkTypeAvailable(typ)
			if err != nil {
				return nil, err
			}
			k.LinkTypes[typ] = ok
		}
	}
	return k, nil
}

// testModes is the mode a check asks for, per featureModes link type.
var testModes = map[string]string{state.LinkMacvlan: "bridge", state.LinkIPvlan: "l2"}

// linkTypeAvailable asks the kernel to create a link of type typ on lo, in a
// new anonymous network namespace that only this check holds (it vanishes
// when the check closes it), so that nothing the node or anyone sees can
// change. A kernel with the type refuses the request (EINVAL: macvlan and
// ipvlan need an Ethernet parent); one without it answers EOPNOTSUPP
// (iproute2's "Unknown device type"), after trying to load the module.
func linkTypeAvailable(typ string) (bool, error) {
	kind, mode := kinds.Of(typ), testModes[typ]
	if kind == nil || mode == "" {
		return false, fmt.Errorf("check link type %q: no check for it", typ)
	}
	l, err := kind.New(&state.Link{Name: "nrcheck0", Type: typ, Mode: mode}, netlink.LinkAttrs{Name: "nrcheck0"},
		drivers.LinkRefs{Parent: 1 /* lo, in every namespace */})
	if err != nil {
		return false, fmt.Errorf("check link type %q: %w", typ, err)
	}
	ns, err := anonymousNetns()
	if err != nil {
		return false, fmt.Errorf("check link type %q: %w", typ, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return false, fmt.Errorf("check link type %q: %w", typ, err)
	}
	defer h.Close()
	err = h.LinkAdd(l)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL):
		return true, nil
	case errors.Is(err, unix.EOPNOTSUPP):
		return false, nil
	}
	return false, fmt.Errorf("check link type %q: %w", typ, err)
}

// anonymousNetns returns a handle on a new network namespace that has no
// name: it exists while the handle is open. The namespace switch happens
// on a locked thread of a goroutine of its own; if switching back fails,
// the goroutine ends locked and the runtime discards the thread.
func anonymousNetns() (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{netns.None(), err}
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			if rerr := netns.Set(orig); rerr == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{netns.None(), err}
			return
		}
		if err := netns.Set(orig); err != nil {
			ch <- result{ns, nil} // the handle is good; the thread stays locked and is discarded
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ns, nil}
	}()
	r := <-ch
	return r.ns, r.err
}
