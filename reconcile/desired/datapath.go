package desired

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/svcdev"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/reconcile/internal/dpconv"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// The eBPF datapath as state objects. A node gets a datapath when the file
// has services or policies; then every pod on it has the programs attached
// (a pod can only reach a service through them), every clusterIP port is a
// Service entry whose backends are the selected pods on any node, and
// every local veth or bridge pod is an Endpoint for the fast path.

// WantsDatapath reports whether the file needs the eBPF datapath.
func WantsDatapath(r *spec.Resolved) bool { return len(r.Services) > 0 || len(r.Policies) > 0 }

// desiredDatapath adds the datapath objects of node n, which holds pods,
// to s.
func desiredDatapath(cfg *Config, shared *Shared, n *drivers.Node, pods []spec.ResolvedPod,
	compiled func() (*compile.Program, error), s *state.State) error {
	r := shared.r
	if !WantsDatapath(r) {
		return nil
	}
	if err := s.Add(&state.Datapath{PinDir: cfg.BPFFS, FastPath: true, Reusable: true, MapSizes: dpconv.Text(r.Maps),
		ConntrackPerSource: uint32(r.ConntrackPerSource), NodeAddr: n.Spec.Address.Addr(),
		OwnerK: state.DatapathOwner}); err != nil {
		return err
	}
	if err := desiredNodePrograms(cfg, n, s); err != nil {
		return err
	}
	use, err := desiredServices(shared, n, s)
	if err != nil {
		return err
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
	return desiredPods(cfg, n, pods, s)
}

// desiredServices adds a Service entry per frontend of each service port
// (see frontends) to s, and returns the map entries they use. A daemon's
// pass adds the entries of a service it kept from the last as they are
// (see serviceObjs.same).
func desiredServices(shared *Shared, n *drivers.Node, s *state.State) (*MapUse, error) {
	use := &MapUse{}
	ports := countPorts(shared.r)
	s.Grow(state.KindService, ports)
	kept := shared.carry.serviceObjs(n.Name, ports, shared.dirty)
	add := func(svc *spec.ResolvedService, o keyedService) error {
		use.Services++
		use.Backends += len(o.svc.Backends)
		kept.keep(svc, o)
		return s.AddKeyed(o.svc, o.key)
	}
	var local map[netip.Addr]bool
	for i := range shared.r.Services {
		svc := &shared.r.Services[i]
		if objs, ok := kept.same(svc); ok {
			for _, o := range objs {
				if err := add(svc, o); err != nil {
					return nil, err
				}
			}
			continue
		}
		for _, port := range svc.Ports {
			all := shared.Backends(svc, port)
			for _, f := range frontends(svc, port, n.Spec.Address.Addr()) {
				bs := all
				if f.local {
					if local == nil {
						local = localPods(shared.r, n.Name)
					}
					bs = localOnly(all, local)
				}
				o := kept.get(svc, port, f, bs)
				if err := add(svc, keyedService{svc: o, key: o.Key()}); err != nil {
					return nil, err
				}
			}
		}
	}
	kept.done()
	return use, nil
}

func countPorts(r *spec.Resolved) int {
	ports := 0
	for _, svc := range r.Services {
		ports += len(svc.Ports)
	}
	return ports
}

// desiredNodePrograms adds the programs on the node's own devices when
// the node has a service device (svcdev): nr_from_host at its egress,
// and every uplink hook (NodePort and external IPs from outside, and the
// replies of connections the node's edge translated).
func desiredNodePrograms(cfg *Config, n *drivers.Node, s *state.State) error {
	if !svcdev.Wanted(n) {
		return nil
	}
	add := func(ifname string, dir datapath.Direction) error {
		name, err := datapath.AttachmentName(cfg.NodeNetns, ifname, dir)
		if err != nil {
			return fmt.Errorf("program on %s: %w", ifname, err)
		}
		return s.Add(&state.Attach{Name: name, NS: state.NodeNS, IfName: ifname, Direction: dir.String(), Live: true,
			OwnerK: svcdev.Owner})
	}
	if err := add(svcdev.Name, datapath.ServiceEgress); err != nil {
		return err
	}
	for _, dir := range datapath.UplinkDirections {
		if err := add(n.Spec.Uplink, dir); err != nil {
			return err
		}
	}
	return nil
}

// desiredPods adds the fast-path endpoints and the program attachments of
// the node's pods to s.
func desiredPods(cfg *Config, n *drivers.Node, pods []spec.ResolvedPod, s *state.State) error {
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
	return addrPorts(r.BackendsIn(spec.NewPodIndex(r.Pods, nil), svc, port))
}

// addrPorts is "ip:port" of each backend, sorted.
func addrPorts(bs []spec.Backend) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, netip.AddrPortFrom(b.Pod.IP, uint16(b.Port)).String())
	}
	sort.Strings(out)
	return out
}
