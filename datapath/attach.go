package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Direction names the hook of an attachment, and with it the program.
type Direction uint8

const (
	// HostIngress is tcx ingress of a pod's host-side veth, in the node's
	// namespace (veth and bridge pods): nr_from_pod sees packets leaving the
	// pod and does load balancing, reverse NAT, refusal and the fast path.
	HostIngress Direction = iota + 1
	// HostEgress is tcx egress of a pod's host-side veth: nr_to_pod sees
	// packets entering the pod and reverse-translates replies from backends
	// on other nodes.
	HostEgress
	// PodEgress is tcx egress of the pod's own interface, in the pod's
	// namespace (macvlan and ipvlan pods): nr_pod_egress, HostIngress's
	// work without the fast path.
	PodEgress
	// PodIngress is tcx ingress of the pod's own interface: nr_pod_ingress,
	// HostEgress's work.
	PodIngress
	// UplinkIngress is tcx ingress of the node's uplink, in the node's
	// namespace: nr_uplink_in serves NodePort and external IP frontends
	// reached from outside (Service.SNAT), and translates the replies of
	// connections that entered at the node's edge.
	UplinkIngress
	// ServiceEgress is tcx egress of the node's service device (nrsvc0,
	// where the node routes the service CIDR and external IPs): nr_from_host
	// load-balances the node's own connections to services.
	ServiceEgress
)

// HostDirections are the hooks of a veth or bridge pod (on its host-side
// veth); PodDirections those of a macvlan or ipvlan pod (on its eth0);
// UplinkDirections those of the node's uplink.
var (
	HostDirections   = []Direction{HostIngress, HostEgress}
	PodDirections    = []Direction{PodEgress, PodIngress}
	UplinkDirections = []Direction{UplinkIngress}
)

var directionNames = map[Direction]string{
	HostIngress:   "host-ingress",
	HostEgress:    "host-egress",
	PodEgress:     "pod-egress",
	PodIngress:    "pod-ingress",
	UplinkIngress: "uplink-ingress",
	ServiceEgress: "service-egress",
}

func (d Direction) String() string {
	if s, ok := directionNames[d]; ok {
		return s
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// ParseDirection is the inverse of Direction.String.
func ParseDirection(s string) (Direction, error) {
	for d, name := range directionNames {
		if name == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("direction %q: %w", s, ErrInvalid)
}

func (d Direction) valid() bool { _, ok := directionNames[d]; return ok }

func (d Direction) ingress() bool { return d == HostIngress || d == PodIngress || d == UplinkIngress }

func (d Direction) attachType() ebpf.AttachType {
	if d.ingress() {
		return ebpf.AttachTCXIngress
	}
	return ebpf.AttachTCXEgress
}

func (d Direction) tcParent() uint32 {
	if d.ingress() {
		return netlink.HANDLE_MIN_INGRESS
	}
	return netlink.HANDLE_MIN_EGRESS
}

// programNames names the program of each hook (as the kernel reports it),
// so that a datapath opened without its programs (Inspect) can still tell
// which program an attachment should run.
var programNames = map[Direction]string{
	HostIngress: "nr_from_pod", HostEgress: "nr_to_pod", PodEgress: "nr_pod_egress", PodIngress: "nr_pod_ingress",
	UplinkIngress: "nr_uplink_in", ServiceEgress: "nr_from_host",
}

func (d *Datapath) program(dir Direction) *ebpf.Program {
	switch dir {
	case HostIngress:
		return d.objs.NrFromPod
	case HostEgress:
		return d.objs.NrToPod
	case PodEgress:
		return d.objs.NrPodEgress
	case PodIngress:
		return d.objs.NrPodIngress
	case UplinkIngress:
		return d.objs.NrUplinkIn
	case ServiceEgress:
		return d.objs.NrFromHost
	}
	return nil
}

func (d *Datapath) programs() []*ebpf.Program {
	return []*ebpf.Program{d.objs.NrFromPod, d.objs.NrToPod, d.objs.NrPodEgress, d.objs.NrPodIngress,
		d.objs.NrUplinkIn, d.objs.NrFromHost, d.objs.NrGcRun}
}

// Attachment modes.
const (
	ModeTCX = "tcx" // a pinned bpf_link (kernel >= 6.6)
	ModeTC  = "tc"  // a clsact filter, recorded by a pinned program
	// ModeAuto is no attachment's mode but the default choice of one
	// (--attach-mode auto): pods' hooks as clsact filters, the node's own
	// hooks as tcx links (see Datapath.PodsTC).
	ModeAuto = "auto"
)

// SetAttachMode makes new attachments follow mode (ModeTCX, ModeTC,
// ModeAuto; "" is ModeAuto).
func (d *Datapath) SetAttachMode(mode string) {
	d.PreferTC = mode == ModeTC
	d.PodsTC = mode == ModeAuto || mode == ""
}

// Attachment is one program attached to one interface hook, as pinned in
// the pin directory and reported by the kernel.
type Attachment struct {
	Name  string // stable pin name, see AttachmentName
	Netns string // namespace reference given to Attach ("" = the process's)
	// NetnsInode identifies the namespace Netns names now (nsfs inode, as
	// lsns prints it; 0 if it is gone). The kernel reports no namespace
	// for a tcx link, so this is the name's, checked by IfIndex matching.
	NetnsInode uint64
	IfName     string
	Direction  Direction
	Mode       string // ModeTCX or ModeTC

	IfIndex   int // as the kernel reports it; 0 when the interface is gone
	LinkID    link.ID
	ProgramID ebpf.ProgramID
	Program   string // program name
	// Current: runs this build's program for Direction, on this
	// Datapath's maps.
	Current bool
	// Defunct: the interface (or its namespace) is gone or is not the one
	// attached to any more. Only memory is held; Detach it.
	Defunct bool
	Reason  string // why Defunct
	// Source is the pod address bound to the interface (Bind), for the
	// hooks of packets leaving a pod (FromPod); invalid when unbound.
	Source netip.Addr
}

// FromPod reports whether dir sees the packets a pod sends: the hook
// whose interface carries the pod's source binding.
func (d Direction) FromPod() bool { return d == HostIngress || d == PodEgress }

// OfPod reports whether dir is a hook of a pod's interface (its host-side
// veth or its own eth0), not of the node's uplink or service device.
func (d Direction) OfPod() bool { return d.valid() && d != UplinkIngress && d != ServiceEgress }

// tcPriority and tcHandle identify our clsact filter on a hook.
const (
	tcPriority = 0x4e52 // "NR"
	tcHandle   = 1
)

// forceTC makes Attach behave as on a kernel without tcx (tests).
var forceTC = false

var nameEscaper = strings.NewReplacer("%", "%25", "/", "%2F", ":", "%3A")
var nameUnescaper = strings.NewReplacer("%25", "%", "%2F", "/", "%3A", ":")

// AttachmentName is the pin name of the attachment of dir on ifname in the
// namespace nsRef: "<netns>:<ifname>:<direction>", the namespace reference
// escaped ('%', '/', ':' as %25, %2F, %3A; "." for the current namespace).
// Interface names cannot contain ':' or '/', so the name parses back.
func AttachmentName(nsRef, ifname string, dir Direction) (string, error) {
	if !dir.valid() {
		return "", fmt.Errorf("direction %d: %w", dir, ErrInvalid)
	}
	if ifname == "" || len(ifname) >= unix.IFNAMSIZ || strings.ContainsAny(ifname, "/: \t\n") {
		return "", fmt.Errorf("interface name %q: %w", ifname, ErrInvalid)
	}
	ns := "."
	if nsRef != "" {
		ns = nameEscaper.Replace(nsRef)
	}
	return ns + ":" + ifname + ":" + dir.String(), nil
}

// ParseAttachmentName is the inverse of AttachmentName.
func ParseAttachmentName(name string) (nsRef, ifname string, dir Direction, err error) {
	parts := strings.Split(name, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", "", 0, fmt.Errorf("attachment name %q: %w", name, ErrInvalid)
	}
	if dir, err = ParseDirection(parts[2]); err != nil {
		return "", "", 0, fmt.Errorf("attachment name %q: %w", name, err)
	}
	if parts[0] != "." {
		nsRef = nameUnescaper.Replace(parts[0])
	}
	return nsRef, parts[1], dir, nil
}

func describe(nsRef, ifname string, dir Direction) string {
	ns := nsRef
	if ns == "" {
		ns = "(current)"
	}
	return fmt.Sprintf("%s on %s in netns %s", dir, ifname, ns)
}

// Attach attaches the program for dir to ifname in the namespace nsRef (a
// name under /var/run/netns, a path, or "" for the caller's), with tcx
// where the kernel has it and a clsact filter otherwise, and pins the
// result under the pin directory. It is idempotent: an attachment of the
// current program to the same interface is left alone, one running another
// program is switched in place (atomically, no packet sees no program),
// and one left defunct by a vanished interface is replaced.
func (d *Datapath) Attach(nsRef, ifname string, dir Direction) error {
	name, err := AttachmentName(nsRef, ifname, dir)
	if err != nil {
		return fmt.Errorf("attach %s: %w", describe(nsRef, ifname, dir), err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.program(dir) == nil {
		return fmt.Errorf("attach %s: programs not loaded (a datapath from OpenMapsWith): %w", describe(nsRef, ifname, dir), ErrInvalid)
	}
	err = nsutil.Do(nsRef, func() error {
		index, err := ifIndex(ifname)
		if err != nil {
			return err
		}
		return d.attachHere(name, index, dir)
	})
	if err != nil {
		return fmt.Errorf("attach %s: %w", describe(nsRef, ifname, dir), err)
	}
	return nil
}

// ifIndex looks interface name up in the calling thread's namespace with
// one ioctl. (net.InterfaceByName dumps every link of the namespace: on a
// node with a thousand pods that is milliseconds per call, and attaching
// programs to every pod became quadratic.)
func ifIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("look up interface %s: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)
	}
	if err != nil {
		return 0, fmt.Errorf("look up interface %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// attachHere runs on a thread in the target namespace.
func (d *Datapath) attachHere(name string, ifindex int, dir Direction) error {
	prog := d.program(dir)
	path := filepath.Join(d.pinDir, linksDir, name)
	if forceTC || d.PreferTC || (d.PodsTC && dir.OfPod()) {
		return d.attachTC(name, ifindex, dir)
	}
	l, err := link.LoadPinnedLink(path, nil)
	switch {
	case err == nil:
		keep, err := d.reuseLink(l, ifindex, dir)
		l.Close()
		if err != nil || keep {
			return err
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return fmt.Errorf("load pinned link %s: %w", path, err)
	}

	l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: dir.attachType()})
	if errors.Is(err, link.ErrNotSupported) {
		return d.attachTC(name, ifindex, dir)
	}
	if err != nil {
		return err
	}
	// Closing an unpinned tcx link detaches it: a failed Pin undoes Attach.
	defer l.Close()
	if err := l.Pin(path); err != nil {
		return fmt.Errorf("pin link: %w", err)
	}
	// A clsact filter from before tcx was available would run twice.
	return d.dropTC(name, ifindex, dir)
}

// dropTC removes our clsact filter on the hook and its record, if any.
// Runs on a thread in the target namespace.
func (d *Datapath) dropTC(name string, ifindex int, dir Direction) error {
	rec := filepath.Join(d.pinDir, tcDir, name)
	if _, err := os.Stat(rec); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.FilterDel(tcFilter(ifindex, dir)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("delete clsact filter: %w", err)
	}
	if err := os.Remove(rec); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove attachment record: %w", err)
	}
	return nil
}

// reuseLink keeps (true) a pinned link that is attached to ifindex at the
// hook of dir, switching it to our program if needed, and otherwise
// unpins it so that it dies with our file descriptor (false).
func (d *Datapath) reuseLink(l link.Link, ifindex int, dir Direction) (bool, error) {
	info, err := l.Info()
	if err != nil {
		return false, fmt.Errorf("inspect pinned link: %w", err)
	}
	if tcx := info.TCX(); tcx != nil && int(tcx.Ifindex) == ifindex && ebpf.AttachType(tcx.AttachType) == dir.attachType() {
		prog := d.program(dir)
		if d.isCurrent(info.Program, programNames[dir]) {
			return true, nil
		}
		if err := l.Update(prog); err != nil {
			return false, fmt.Errorf("update link %d to the current program: %w", info.ID, err)
		}
		return true, nil
	}
	_ = l.Detach() // a defunct link may refuse; unpinning frees it anyway
	if err := l.Unpin(); err != nil {
		return false, fmt.Errorf("unpin stale link %d: %w", info.ID, err)
	}
	return false, nil
}

// attachTC is the fallback for kernels without tcx: a direct-action cls_bpf
// filter on a clsact qdisc. The filter holds the program by itself; a clone
// of the program pinned under tc/ records the attachment for Attachments,
// Detach and Destroy. Runs on a thread in the target namespace.
func (d *Datapath) attachTC(name string, ifindex int, dir Direction) error {
	prog := d.program(dir)
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	rec := filepath.Join(d.pinDir, tcDir, name)
	if current, err := d.tcCurrent(h, rec, ifindex, dir); err != nil || current {
		return err
	}
	// A tcx link for the same hook would run the program twice.
	if l, err := link.LoadPinnedLink(filepath.Join(d.pinDir, linksDir, name), nil); err == nil {
		_ = l.Detach()
		err = l.Unpin()
		l.Close()
		if err != nil {
			return fmt.Errorf("unpin tcx link: %w", err)
		}
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := h.QdiscAdd(qdisc); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	f := tcFilter(ifindex, dir)
	f.Fd = prog.FD()
	f.Name = programNames[dir] // the kernel's name of prog, without asking it
	f.DirectAction = true
	if err := h.FilterReplace(f); err != nil {
		return fmt.Errorf("add bpf filter: %w", err)
	}
	if err := os.Remove(rec); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace attachment record: %w", err)
	}
	c, err := prog.Clone()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Pin(rec); err != nil {
		return fmt.Errorf("record attachment: %w", err)
	}
	return nil
}

// tcCurrent reports whether the hook already runs our current program
// through the filter recorded at rec.
func (d *Datapath) tcCurrent(h *netlink.Handle, rec string, ifindex int, dir Direction) (bool, error) {
	if _, err := os.Stat(rec); err != nil {
		return false, nil
	}
	l, err := h.LinkByIndex(ifindex)
	if err != nil {
		return false, err
	}
	filters, err := h.FilterList(l, dir.tcParent())
	if err != nil {
		return false, fmt.Errorf("list clsact filters: %w", err)
	}
	for _, f := range filters {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Priority == tcPriority && bf.Handle == tcHandle {
			return d.isCurrent(ebpf.ProgramID(bf.Id), programNames[dir]), nil
		}
	}
	return false, nil
}

func tcFilter(ifindex int, dir Direction) *netlink.BpfFilter {
	return &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{
		LinkIndex: ifindex,
		Parent:    dir.tcParent(),
		Handle:    tcHandle,
		Priority:  tcPriority,
		Protocol:  unix.ETH_P_ALL,
	}}
}

// pinRef is an attachment as found in the pin directory.
type pinRef struct {
	Attachment
	path     string
	parseErr error
}

func listPins(pinDir string) []pinRef {
	var refs []pinRef
	for _, mode := range []string{ModeTCX, ModeTC} {
		dir := filepath.Join(pinDir, linksDir)
		if mode == ModeTC {
			dir = filepath.Join(pinDir, tcDir)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			r := pinRef{path: filepath.Join(dir, e.Name())}
			r.Name, r.Mode = e.Name(), mode
			r.Netns, r.IfName, r.Direction, r.parseErr = ParseAttachmentName(e.Name())
			refs = append(refs, r)
		}
	}
	return refs
}

// KnownLinks is what a caller has already listed of some namespaces'
// links: namespace reference (as given to Attach) -> link name -> ifindex.
type KnownLinks map[string]map[string]int

// Attachments lists what is attached, from the pin directory and the
// kernel: one entry per pinned link (and per clsact record), sorted by
// name, with defunct ones flagged. A few workers read them at once: the
// cost is a netlink or bpf round trip per attachment, two per pod. The
// links of a namespace in known are not listed again (may be nil).
func (d *Datapath) Attachments(known KnownLinks) ([]Attachment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	refs := listPins(d.pinDir)
	out := make([]Attachment, len(refs))
	errs := make([]error, attachWorkers)
	shared := newNSFacts(known)
	var wg sync.WaitGroup
	for w := range min(attachWorkers, len(refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nl := newNSLinks(shared)
			defer nl.close()
			for i := w; i < len(refs); i += attachWorkers {
				a, err := d.inspect(refs[i], nl)
				if err != nil {
					errs[w] = fmt.Errorf("list attachments: %s: %w", refs[i].Name, err)
					return
				}
				out[i] = a
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := d.sourcesOf(out); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Attachment) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// sourcesOf fills in the source bound to each from-pod attachment's
// interface.
func (d *Datapath) sourcesOf(atts []Attachment) error {
	binds, err := d.bindings()
	if err != nil {
		return fmt.Errorf("list attachments: %w", err)
	}
	type iface struct {
		ino uint64
		idx int
	}
	byIface := make(map[iface]netip.Addr, len(binds))
	for _, b := range binds {
		byIface[iface{b.NetnsInode, b.IfIndex}] = b.IP
	}
	for i := range atts {
		a := &atts[i]
		if a.Direction.FromPod() && !a.Defunct {
			a.Source = byIface[iface{a.NetnsInode, a.IfIndex}]
		}
	}
	return nil
}

// attachWorkers bounds the attachments Attachments reads at once.
const attachWorkers = 4

func (d *Datapath) inspect(r pinRef, nl *nsLinks) (Attachment, error) {
	a := r.Attachment
	a.NetnsInode = nl.inode(a.Netns)
	switch {
	case r.parseErr != nil:
		a.Defunct, a.Reason = true, "not a netreconcile attachment name"
		return a, nil
	case r.Mode == ModeTCX:
		return a, d.inspectTCX(&a, r.path, nl)
	default:
		return a, d.inspectTC(&a, nl)
	}
}

func nsInode(ref string) uint64 {
	p := nsutil.Path(ref)
	if p == "" {
		p = "/proc/self/ns/net"
	}
	var st unix.Stat_t
	if unix.Stat(p, &st) != nil {
		return 0
	}
	return st.Ino
}

func (d *Datapath) inspectTCX(a *Attachment, path string, nl *nsLinks) error {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return err
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return err
	}
	a.LinkID, a.ProgramID = info.ID, info.Program
	if tcx := info.TCX(); tcx != nil {
		a.IfIndex = int(tcx.Ifindex)
	}
	a.Program, a.Current = nl.describe(d, a.ProgramID, a.Direction)
	switch {
	case info.TCX() == nil:
		a.Defunct, a.Reason = true, fmt.Sprintf("not a tcx link (%v)", info.Type)
	case a.IfIndex == 0:
		a.Defunct, a.Reason = true, "interface gone"
	default:
		switch idx, why := nl.index(a.Netns, a.IfName); {
		case idx == 0:
			a.Defunct, a.Reason = true, why
		case idx != a.IfIndex:
			a.Defunct, a.Reason = true, fmt.Sprintf("%s is now ifindex %d", a.IfName, idx)
		}
	}
	return nil
}

// inspectTC reads a clsact attachment: its record (the pin) says it is
// ours; the filter on the hook says what runs there.
func (d *Datapath) inspectTC(a *Attachment, nl *nsLinks) error {
	idx, why := nl.index(a.Netns, a.IfName)
	if idx == 0 {
		a.Defunct, a.Reason = true, why
		return nil
	}
	a.IfIndex = idx
	id, err := nl.tcProgram(a.Netns, idx, a.Direction)
	if err != nil {
		return err
	}
	if id == 0 {
		a.Defunct, a.Reason = true, "clsact filter missing"
		return nil
	}
	a.ProgramID = id
	a.Program, a.Current = nl.describe(d, id, a.Direction)
	return nil
}

func (d *Datapath) describeProgram(id ebpf.ProgramID, dir Direction) (name string, current bool) {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return "", false
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return "", false
	}
	return info.Name, info.Name == programNames[dir] && d.sameIdentity(info, info.Name)
}

// isCurrent reports whether the program id is the build's program name on
// this Datapath's maps (it may be another load of it: ids differ between
// processes, tag and maps do not).
func (d *Datapath) isCurrent(id ebpf.ProgramID, name string) bool {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return false
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return false
	}
	return info.Name == name && d.sameIdentity(info, name)
}

func (d *Datapath) sameIdentity(info *ebpf.ProgramInfo, name string) bool {
	want, ok := d.progs[name]
	if !ok || info.Tag != want.tag {
		return false
	}
	ids, _ := info.MapIDs()
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return slices.Equal(ids, want.maps)
}

func identify(p *ebpf.Program) (progIdentity, error) {
	info, err := p.Info()
	if err != nil {
		return progIdentity{}, err
	}
	ids, ok := info.MapIDs()
	if !ok {
		return progIdentity{}, fmt.Errorf("program map ids: %w", ErrUnavailable)
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return progIdentity{tag: info.Tag, maps: ids}, nil
}

func progName(p *ebpf.Program) string {
	info, err := p.Info()
	if err != nil {
		return ""
	}
	return info.Name
}

// upgradeLinks switches pinned attachments that run another program (an
// older build, or maps that were just replaced) to this build's, in place.
// A link that cannot be switched is a note, not a failure: Attachments
// shows it not Current, for Attach or Detach to settle.
func (d *Datapath) upgradeLinks() {
	for _, r := range listPins(d.pinDir) {
		if r.parseErr != nil {
			continue
		}
		name := progName(d.program(r.Direction))
		upgraded, err := d.upgradeLink(r)
		switch {
		case err != nil:
			d.notes = append(d.notes, fmt.Sprintf("could not upgrade attachment %s to the current %s: %v", r.Name, name, err))
		case upgraded:
			d.notes = append(d.notes, fmt.Sprintf("upgraded attachment %s in place to the current %s", r.Name, name))
		}
	}
}

func (d *Datapath) upgradeLink(r pinRef) (bool, error) {
	prog := d.program(r.Direction)
	name := progName(prog)
	if r.Mode == ModeTCX {
		l, err := link.LoadPinnedLink(r.path, nil)
		if err != nil {
			return false, err
		}
		defer l.Close()
		info, err := l.Info()
		if err != nil {
			return false, err
		}
		if info.TCX() == nil || info.TCX().Ifindex == 0 || d.isCurrent(info.Program, name) {
			return false, nil // defunct links are for Detach
		}
		return true, l.Update(prog)
	}
	rec, err := ebpf.LoadPinnedProgram(r.path, nil)
	if err != nil {
		return false, err
	}
	info, err := rec.Info()
	rec.Close()
	if err != nil {
		return false, err
	}
	if id, _ := info.ID(); d.isCurrent(id, name) || !nsutil.Exists(r.Netns) {
		return false, nil
	}
	upgraded := false
	err = nsutil.Do(r.Netns, func() error {
		index, err := ifIndex(r.IfName)
		if err != nil {
			return nil // gone: Attachments reports it defunct
		}
		upgraded = true
		return d.attachTC(r.Name, index, r.Direction)
	})
	return upgraded, err
}

// Detach removes the attachment called name (see Attachments): the link
// is detached and unpinned, or the clsact filter deleted and its record
// unpinned. An attachment that does not exist is success.
func (d *Datapath) Detach(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	// The pins are named after the attachment: look at the two possible
	// paths rather than list the directories (a thousand pods' detaches
	// would read them a thousand times).
	for _, mode := range []string{ModeTCX, ModeTC} {
		dir := linksDir
		if mode == ModeTC {
			dir = tcDir
		}
		r := pinRef{path: filepath.Join(d.pinDir, dir, name)}
		if _, err := os.Lstat(r.path); err != nil || strings.Contains(name, "/") {
			continue
		}
		r.Name, r.Mode = name, mode
		r.Netns, r.IfName, r.Direction, r.parseErr = ParseAttachmentName(name)
		if r.parseErr == nil && r.Direction.FromPod() {
			if err := d.unbindIface(r.Netns, r.IfName); err != nil {
				return fmt.Errorf("detach %s: %w", name, err)
			}
		}
		if err := detach(d.pinDir, r); err != nil {
			return err
		}
	}
	return nil
}

func detach(pinDir string, r pinRef) error {
	wrap := func(err error) error { return fmt.Errorf("detach %s: %w", r.Name, err) }
	if r.Mode == ModeTCX {
		l, err := link.LoadPinnedLink(r.path, nil)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			// Not a link we can load: drop the pin, which is all we own.
			if rerr := os.Remove(r.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				return wrap(errors.Join(err, rerr))
			}
			return nil
		}
		defer l.Close()
		_ = l.Detach() // defunct links have nothing to detach from
		if err := l.Unpin(); err != nil {
			return wrap(err)
		}
		return nil
	}
	if r.parseErr == nil && nsutil.Exists(r.Netns) {
		err := nsutil.Do(r.Netns, func() error {
			index, err := ifIndex(r.IfName)
			if err != nil {
				return nil // gone, and its filters with it
			}
			h, err := netlink.NewHandle()
			if err != nil {
				return err
			}
			defer h.Close()
			err = h.FilterDel(tcFilter(index, r.Direction))
			if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
				return err
			}
			return nil
		})
		if err != nil {
			return wrap(err)
		}
	}
	if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return wrap(err)
	}
	return nil
}

// nsLinks resolves interface names and clsact filters per namespace with
// one netlink handle each (no thread switching). One per worker; facts is
// shared by the workers of one Attachments call.
type nsLinks struct {
	handles map[string]*netlink.Handle
	errs    map[string]string
	progs   map[progRef]progDesc // program descriptions already read
	facts   *nsFacts
}

// nsFacts holds, per namespace, what every attachment in it needs: its
// links by name (the node namespace holds every pod's host end, a large
// dump) and its inode. Each is read once.
type nsFacts struct {
	mu     sync.Mutex
	names  map[string]map[string]int
	inodes map[string]uint64
}

func newNSFacts(known KnownLinks) *nsFacts {
	f := &nsFacts{names: map[string]map[string]int{}, inodes: map[string]uint64{}}
	for ref, names := range known {
		f.names[ref] = names
	}
	return f
}

func newNSLinks(facts *nsFacts) *nsLinks {
	return &nsLinks{handles: map[string]*netlink.Handle{}, errs: map[string]string{}, progs: map[progRef]progDesc{},
		facts: facts}
}

func (n *nsLinks) inode(ref string) uint64 {
	n.facts.mu.Lock()
	defer n.facts.mu.Unlock()
	ino, ok := n.facts.inodes[ref]
	if !ok {
		ino = nsInode(ref)
		n.facts.inodes[ref] = ino
	}
	return ino
}

type progRef struct {
	id  ebpf.ProgramID
	dir Direction
}

type progDesc struct {
	name    string
	current bool
}

// describe is d.describeProgram, once per program and direction: every
// pod's link runs one of a few programs, and reading a program's info
// costs several syscalls.
func (n *nsLinks) describe(d *Datapath, id ebpf.ProgramID, dir Direction) (string, bool) {
	ref := progRef{id, dir}
	if p, ok := n.progs[ref]; ok {
		return p.name, p.current
	}
	name, current := d.describeProgram(id, dir)
	n.progs[ref] = progDesc{name, current}
	return name, current
}

func (n *nsLinks) handle(ref string) (*netlink.Handle, string) {
	if h, ok := n.handles[ref]; ok {
		return h, ""
	}
	if why, ok := n.errs[ref]; ok {
		return nil, why
	}
	h, err := nsutil.Handle(ref)
	switch {
	case errors.Is(err, nsutil.ErrNotNetns):
		n.errs[ref] = "namespace gone"
		return nil, n.errs[ref]
	case err != nil:
		n.errs[ref] = err.Error()
		return nil, n.errs[ref]
	}
	n.handles[ref] = h
	return h, ""
}

// index returns the ifindex of ifname in ref, or 0 and why not. The
// namespace's links are listed once (the node's namespace holds every
// pod's host end: one request per attachment was most of Attachments).
func (n *nsLinks) index(ref, ifname string) (int, string) {
	n.facts.mu.Lock()
	defer n.facts.mu.Unlock()
	names, ok := n.facts.names[ref]
	if !ok {
		h, why := n.handle(ref)
		if h == nil {
			return 0, why
		}
		links, err := h.LinkList()
		if err != nil {
			// a dump interrupted by a concurrent change: ask for this one
			l, err := h.LinkByName(ifname)
			if err != nil {
				return 0, "interface gone"
			}
			return l.Attrs().Index, ""
		}
		names = make(map[string]int, len(links))
		for _, l := range links {
			names[l.Attrs().Name] = l.Attrs().Index
		}
		n.facts.names[ref] = names
	}
	if idx := names[ifname]; idx != 0 {
		return idx, ""
	}
	return 0, "interface gone"
}

// tcProgram returns the program id of our clsact filter on the hook.
func (n *nsLinks) tcProgram(ref string, ifindex int, dir Direction) (ebpf.ProgramID, error) {
	h, _ := n.handle(ref)
	if h == nil {
		return 0, nil
	}
	// The caller found ifindex in this namespace's links (index): list
	// its filters without asking for the link again.
	l := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
	filters, err := h.FilterList(l, dir.tcParent())
	if errors.Is(err, unix.ENODEV) {
		return 0, nil // gone since
	}
	if err != nil {
		return 0, fmt.Errorf("list clsact filters: %w", err)
	}
	for _, f := range filters {
		bf, ok := f.(*netlink.BpfFilter)
		if ok && bf.Priority == tcPriority && bf.Handle == tcHandle {
			return ebpf.ProgramID(bf.Id), nil
		}
	}
	return 0, nil
}

func (n *nsLinks) close() {
	for _, h := range n.handles {
		h.Close()
	}
}
