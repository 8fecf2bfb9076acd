package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/bpf"
)

// DefaultPinRoot is where node pin directories live unless --bpffs says
// otherwise; a node's directory is DefaultPinDir(node).
const DefaultPinRoot = "/sys/fs/bpf/netreconcile"

// bpffsMount is the conventional bpffs mount point that Open mounts when a
// pin directory below it is requested and it is missing.
const bpffsMount = "/sys/fs/bpf"

// LayoutVersion is the version of the map layout of this build (enum
// layout in bpf/datapath.c). Pinned maps of another version are replaced.
const LayoutVersion = uint32(bpf.NrLayoutNR_LAYOUT_VERSION)

// DefaultHairpinIP is the source address a pod sees when it reaches itself
// through a service.
var DefaultHairpinIP = netip.AddrFrom4([4]byte{169, 254, 42, 1})

// Errors matched with errors.Is.
var (
	// ErrUnavailable: the kernel refuses BPF, or the pin directory is not
	// on a bpf filesystem.
	ErrUnavailable = errors.New("ebpf datapath unavailable")
	// ErrInvalid: an argument that can never be programmed (not IPv4, port
	// 0, unknown protocol or direction, duplicate backend, ...).
	ErrInvalid = errors.New("invalid")
)

// Directory names inside a pin directory.
const (
	linksDir = "links" // pinned tcx links
	progsDir = "progs" // this build's programs, under progs/<bpf.ObjectHash()>
	tcDir    = "tc"    // records of clsact attachments (tcx fallback)
)

// DefaultPinDir is the pin directory of node under DefaultPinRoot.
func DefaultPinDir(node string) string {
	return filepath.Join(DefaultPinRoot, node)
}

// Datapath is a node's service datapath: this build's programs, loaded
// against the node's pinned maps. Its methods are safe for concurrent use.
// Close releases our file descriptors only; what is pinned keeps working.
type Datapath struct {
	mu     sync.Mutex
	pinDir string
	objs   bpf.NrObjects
	progs  map[string]progIdentity // by program name
	notes  []string
	nextID uint32 // hint for the next service id to claim
	// standIns counts maps that Inspect found unpinned (addedMaps) and
	// replaced with empty unpinned ones: what is written to them is lost.
	standIns int

	// PreferTC attaches new programs as clsact filters even where tcx
	// exists. Each tcx attach waits for an RCU grace period while holding
	// the rtnl lock (about 10 ms here, serialising every other netlink
	// change); a clsact filter takes about 0.5 ms. Existing attachments are
	// kept in whichever form they have.
	PreferTC bool
	// PodsTC is PreferTC for the pods' hooks alone (Direction.OfPod): the
	// default (--attach-mode auto), since a node holds a thousand pods'
	// hooks but two hooks of its own, which stay tcx links.
	PodsTC bool
}

// progIdentity is what makes a running program "ours": same instructions
// (tag) using the same maps.
type progIdentity struct {
	tag  string
	maps []ebpf.MapID // sorted
}

// nrSpec is the embedded object, parsed once: parsing its ELF and BTF
// costs more than opening pinned maps, which a plan does every time.
var nrSpec = sync.OnceValues(bpf.LoadNr)

// loadSpec returns a copy of the parsed object for one use.
func loadSpec() (*ebpf.CollectionSpec, error) {
	spec, err := nrSpec()
	if err != nil {
		return nil, err
	}
	return spec.Copy(), nil
}

// Open loads the datapath against the maps pinned in pinDir, creating the
// directory (and mounting bpffs at /sys/fs/bpf when pinDir is below it and
// nothing is mounted there) and the maps that are missing. Maps pinned by a
// build with another layout are replaced, never half-used; Notes says what
// was replaced or upgraded, for the caller to log.
func Open(pinDir string) (*Datapath, error) { return OpenWith(pinDir, Sizes{}) }

// prepare is what Open and OpenMapsWith do before loading anything: the
// pin directory exists on bpffs, and maps of another layout are unpinned.
func prepare(pinDir string, sizes Sizes) (*Datapath, *ebpf.CollectionSpec, error) {
	if err := ensureBPFFS(pinDir); err != nil {
		return nil, nil, err
	}
	for _, dir := range []string{pinDir, filepath.Join(pinDir, linksDir), filepath.Join(pinDir, tcDir)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, err
		}
	}
	spec, err := loadSpec()
	if err == nil {
		err = sizes.apply(spec)
	}
	if err != nil {
		return nil, nil, err
	}
	d := &Datapath{pinDir: pinDir, nextID: 1}
	if reason, err := pinnedLayoutMismatch(spec, pinDir); err != nil {
		return nil, nil, err
	} else if reason != "" {
		if err := d.replaceMaps(reason); err != nil {
			return nil, nil, err
		}
	}
	return d, spec, nil
}

func open(pinDir string, sizes Sizes) (*Datapath, error) {
	d, spec, err := prepare(pinDir, sizes)
	if err != nil {
		return nil, err
	}
	added := missingAddedMaps(spec, pinDir)
	if len(added) == 0 && d.loadPinned(spec) {
		if err := d.init(false); err != nil {
			d.objs.Close()
			return nil, err
		}
		return d, nil
	}
	if err := d.loadMaps(spec, added); err != nil {
		return nil, err
	}
	if err := d.loadPrograms(spec); err != nil {
		d.objs.Close()
		return nil, err
	}
	if err := d.init(false); err != nil {
		d.objs.Close()
		return nil, err
	}
	// Programs just loaded: attachments may run an older build's. (With
	// this build's pins reused above, the Open that pinned them did this.)
	d.upgradeLinks()
	if err := d.pinPrograms(); err != nil {
		d.objs.Close()
		return nil, err
	}
	return d, nil
}

// OpenMapsWith is OpenWith without the programs: it creates, pins and
// stamps the maps (replacing incompatible ones, adding missing ones, as
// OpenWith does) and returns a Datapath that programs entries but cannot
// attach. Loading the programs means verifying them, seconds of CPU for a
// new build; OpenWith on the same pin directory loads them later against
// these maps (the verifier can run while the maps are being filled).
func OpenMapsWith(pinDir string, sizes Sizes) (*Datapath, error) {
	if pinDir == "" {
		return nil, fmt.Errorf("open datapath maps: empty pin directory: %w", ErrInvalid)
	}
	pinDir = filepath.Clean(pinDir)
	d, err := openMaps(pinDir, sizes)
	if err != nil {
		return nil, fmt.Errorf("open datapath maps %s: %w", pinDir, err)
	}
	return d, nil
}

func openMaps(pinDir string, sizes Sizes) (*Datapath, error) {
	d, spec, err := prepare(pinDir, sizes)
	if err != nil {
		return nil, err
	}
	if err := d.loadMaps(spec, missingAddedMaps(spec, pinDir)); err != nil {
		return nil, err
	}
	// The programs' identities come from their pins, as for Inspect.
	if err := d.init(false); err != nil {
		d.objs.Close()
		return nil, err
	}
	return d, nil
}

// loadMaps opens the maps pinned in d's directory, creating and pinning
// those missing and replacing incompatible ones. added are the maps an
// older build lacked (see addedMaps), noted once loaded.
func (d *Datapath) loadMaps(spec *ebpf.CollectionSpec, added []string) error {
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: d.pinDir}}
	err := spec.LoadAndAssign(&d.objs.NrMaps, opts)
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		added = nil
		if rerr := d.replaceMaps(err.Error()); rerr != nil {
			return errors.Join(err, rerr)
		}
		err = spec.LoadAndAssign(&d.objs.NrMaps, opts)
	}
	if err != nil {
		return loadError("load maps", err)
	}
	if len(added) > 0 {
		d.notes = append(d.notes, fmt.Sprintf("added maps %s (empty) beside the maps an older build pinned in %s",
			strings.Join(added, ", "), d.pinDir))
	}
	return nil
}

// slowProgram is the program the verifier spends most of its time on
// (nr_from_pod: about 1.9 s of 2.3 s here).
const slowProgram = "nr_from_pod"

// loadPrograms loads this build's programs against the maps pinned in d's
// directory: slowProgram and the others at once, so that a second CPU
// verifies the others meanwhile.
func (d *Datapath) loadPrograms(spec *ebpf.CollectionSpec) error {
	var (
		wg    sync.WaitGroup
		progs [2]map[string]*ebpf.Program
		errs  [2]error
	)
	for i, slow := range []bool{true, false} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			progs[i], errs[i] = loadSome(spec, d.pinDir, func(name string) bool { return (name == slowProgram) == slow })
		}()
	}
	wg.Wait()
	loaded := maps.Clone(progs[0])
	maps.Copy(loaded, progs[1])
	err := errors.Join(errs[:]...)
	fields := reflect.ValueOf(&d.objs.NrPrograms).Elem()
	for i := range fields.NumField() {
		if _, ok := loaded[fields.Type().Field(i).Tag.Get("ebpf")]; !ok && err == nil {
			err = fmt.Errorf("program %s: not in the object", fields.Type().Field(i).Tag.Get("ebpf"))
		}
	}
	if err != nil {
		for _, p := range loaded {
			p.Close()
		}
		return loadError("load programs", err)
	}
	for i := range fields.NumField() {
		fields.Field(i).Set(reflect.ValueOf(loaded[fields.Type().Field(i).Tag.Get("ebpf")]))
	}
	return nil
}

// loadSome loads the programs of spec that keep selects, against the maps
// pinned in pinDir.
func loadSome(spec *ebpf.CollectionSpec, pinDir string, keep func(string) bool) (map[string]*ebpf.Program, error) {
	s := spec.Copy()
	for name := range s.Programs {
		if !keep(name) {
			delete(s.Programs, name)
		}
	}
	c, err := ebpf.NewCollectionWithOptions(s, ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}})
	if err != nil {
		return nil, err
	}
	defer c.Close() // the maps: each program holds those it uses
	out := make(map[string]*ebpf.Program, len(c.Programs))
	for name := range c.Programs {
		out[name] = c.DetachProgram(name)
	}
	return out, nil
}

// loadError wraps an error of loading maps or programs: the kernel
// refusing BPF is ErrUnavailable, a verifier refusal shows its log.
func loadError(what string, err error) error {
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s: %w (%w)", what, ErrUnavailable, err)
	}
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return fmt.Errorf("%s: %+v", what, verr)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// loadPinned fills d.objs from pins alone: the maps, and this build's
// programs as pinPrograms left them, provided those use exactly the maps
// pinned now (not ones since replaced). Loading the programs instead means
// the verifier runs on each, about half a second, which would dominate a
// one-pod change. It reports false, holding nothing, when the pins do not
// qualify.
func (d *Datapath) loadPinned(spec *ebpf.CollectionSpec) (ok bool) {
	dir := filepath.Join(d.pinDir, progsDir, bpf.ObjectHash())
	if _, err := os.Stat(dir); err != nil {
		return false
	}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: d.pinDir}}
	if err := spec.LoadAndAssign(&d.objs.NrMaps, opts); err != nil {
		return false
	}
	defer func() {
		if !ok {
			d.objs.Close()
		}
	}()
	pinned := map[ebpf.MapID]bool{}
	maps := reflect.ValueOf(&d.objs.NrMaps).Elem()
	for i := range maps.NumField() {
		info, err := maps.Field(i).Interface().(*ebpf.Map).Info()
		if err != nil {
			return false
		}
		id, ok := info.ID()
		if !ok {
			return false
		}
		pinned[id] = true
	}
	progs := reflect.ValueOf(&d.objs.NrPrograms).Elem()
	for i := range progs.NumField() {
		name := progs.Type().Field(i).Tag.Get("ebpf")
		p, err := ebpf.LoadPinnedProgram(filepath.Join(dir, name), nil)
		if err != nil {
			return false
		}
		progs.Field(i).Set(reflect.ValueOf(p))
		id, err := identify(p)
		if err != nil || slices.ContainsFunc(id.maps, func(m ebpf.MapID) bool { return !pinned[m] }) {
			return false
		}
	}
	return true
}

// pinPrograms pins this build's programs under progs/<hash>, so Inspect
// can identify them without loading, and drops other builds' pins (links
// still running those programs hold them; upgradeLinks switches them).
func (d *Datapath) pinPrograms() error {
	root := filepath.Join(d.pinDir, progsDir)
	dir := filepath.Join(root, bpf.ObjectHash())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pin programs: %w", err)
	}
	for _, p := range d.programs() {
		path := filepath.Join(dir, progName(p))
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if err := p.Pin(path); err != nil {
			return fmt.Errorf("pin program %s: %w", progName(p), err)
		}
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if e.Name() != bpf.ObjectHash() {
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
	return nil
}

// pinnedIdentities identifies this build's programs from their pins.
// Without pins (a datapath set up by an older build) it returns none, and
// every attachment reads as not current until Open pins them.
func pinnedIdentities(pinDir string) map[string]progIdentity {
	out := map[string]progIdentity{}
	dir := filepath.Join(pinDir, progsDir, bpf.ObjectHash())
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p, err := ebpf.LoadPinnedProgram(filepath.Join(dir, e.Name()), nil)
		if err != nil {
			continue
		}
		if id, err := identify(p); err == nil {
			out[e.Name()] = id
		}
		p.Close()
	}
	return out
}

// addedMaps are maps that a build may find missing from a pin directory
// that an older build of the same layout version pinned: Open adds them
// (empty) without replacing the others. Any other missing map means the
// pins are incomplete, and the datapath is replaced.
var addedMaps = map[string]bool{
	bpf.NrMapNrPolIds: true, bpf.NrMapNrPolPods: true, bpf.NrMapNrPolRules: true,
	bpf.NrMapNrPolCt: true, bpf.NrMapNrPolState: true,
}

// missingAddedMaps lists the addedMaps that are not pinned in dir while
// other maps of spec are: a build that predates them pinned the datapath.
func missingAddedMaps(spec *ebpf.CollectionSpec, dir string) []string {
	var missing []string
	others := false
	for name := range spec.Maps {
		_, err := os.Stat(filepath.Join(dir, name))
		switch {
		case addedMaps[name] && err != nil:
			missing = append(missing, name)
		case !addedMaps[name] && err == nil:
			others = true
		}
	}
	if !others {
		return nil
	}
	slices.Sort(missing)
	return missing
}

// Inspect opens the datapath pinned in pinDir for reading only: unlike
// Open it creates, replaces and upgrades nothing, so plan and show stay
// read-only. It returns a nil Datapath when pinDir holds none, and a
// reason (with a nil Datapath) when what is pinned cannot be reused by
// this build (Open would replace it).
func Inspect(pinDir string) (*Datapath, string, error) { return InspectWith(pinDir, Sizes{}) }

// InspectWith is Inspect for maps sized by sizes: pinned maps of other
// sizes cannot be reused (the reason says which).
func InspectWith(pinDir string, sizes Sizes) (*Datapath, string, error) {
	pinDir = filepath.Clean(pinDir)
	if _, err := os.Stat(filepath.Join(pinDir, bpf.NrMapNrConfig)); err != nil {
		return nil, "", nil
	}
	spec, err := loadSpec()
	if err == nil {
		err = sizes.apply(spec)
	}
	if err != nil {
		return nil, "", err
	}
	reason, err := pinnedLayoutMismatch(spec, pinDir)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}}
	for name := range spec.Maps {
		if _, err := os.Stat(filepath.Join(pinDir, name)); err != nil {
			if !addedMaps[name] {
				return nil, "map " + name + " is not pinned", nil
			}
			// Pinned by a build that predates the map: Open adds it,
			// empty; reading, an unpinned empty one stands in for it.
			ms := spec.Maps[name].Copy()
			ms.Pinning = ebpf.PinNone
			m, err := ebpf.NewMap(ms)
			if err != nil {
				return nil, "", fmt.Errorf("inspect datapath %s: stand-in for %s: %w", pinDir, name, err)
			}
			defer m.Close()
			if opts.MapReplacements == nil {
				opts.MapReplacements = map[string]*ebpf.Map{}
			}
			opts.MapReplacements[name] = m
		}
	}
	d := &Datapath{pinDir: pinDir, nextID: 1, standIns: len(opts.MapReplacements)}
	// Maps only: loading the programs would mean verifying them on every
	// plan; their identity comes from this build's pinned programs.
	if err := spec.LoadAndAssign(&d.objs.NrMaps, opts); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, err.Error(), nil
		}
		return nil, "", fmt.Errorf("inspect datapath %s: %w", pinDir, err)
	}
	if err := d.init(true); err != nil {
		d.objs.Close()
		return nil, "", err
	}
	return d, "", nil
}

func (d *Datapath) init(readOnly bool) error {
	var cfg bpf.NrConfig
	if err := d.objs.NrConfig.Lookup(uint32(0), &cfg); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if cfg.Version == 0 && !readOnly {
		// Fresh maps: stamp them with our layout and the defaults.
		cfg = bpf.NrConfig{
			Version:   bpf.NrLayoutNR_LAYOUT_VERSION,
			HairpinIp: be32(DefaultHairpinIP),
			Flags:     bpf.NrCfgFlagsNR_CFG_FASTPATH,
		}
		if err := d.objs.NrConfig.Put(uint32(0), &cfg); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
	}

	mapsOnly := readOnly || d.objs.NrFromPod == nil
	if mapsOnly {
		d.progs = pinnedIdentities(d.pinDir)
	} else {
		d.progs = map[string]progIdentity{}
	}
	for _, p := range d.programs() {
		if mapsOnly {
			break
		}
		id, err := identify(p)
		if err != nil {
			return fmt.Errorf("inspect program: %w", err)
		}
		d.progs[progName(p)] = id
	}

	err := scan(d.objs.NrSvcIds, func(id *uint32, _ *bpf.NrSvcKey) {
		if *id >= d.nextID {
			d.nextID = *id + 1
		}
	})
	if err != nil {
		return fmt.Errorf("read service ids: %w", err)
	}
	return nil
}

// pinnedLayoutMismatch says why the maps pinned in dir cannot be reused by
// this build ("" when they can, or when there are none).
func pinnedLayoutMismatch(spec *ebpf.CollectionSpec, dir string) (string, error) {
	var pinned []string
	for name := range spec.Maps {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			pinned = append(pinned, name)
		}
	}
	if len(pinned) == 0 {
		return "", nil
	}
	slices.Sort(pinned)
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, bpf.NrMapNrConfig), nil)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("maps %s pinned without %s", strings.Join(pinned, ", "), bpf.NrMapNrConfig), nil
	}
	if err != nil {
		return "", fmt.Errorf("load pinned %s: %w", bpf.NrMapNrConfig, err)
	}
	defer m.Close()
	// The version leads every layout's config, whatever its size: read it
	// first, so the note names the layouts rather than a size.
	raw := make([]byte, m.ValueSize())
	if err := m.Lookup(uint32(0), &raw); err != nil {
		return "", fmt.Errorf("read pinned %s: %w", bpf.NrMapNrConfig, err)
	}
	if len(raw) >= 4 {
		if v := binary.LittleEndian.Uint32(raw); v != 0 && v != LayoutVersion {
			return fmt.Sprintf("layout version %d, this build uses %d", v, LayoutVersion), nil
		}
	}
	if err := spec.Maps[bpf.NrMapNrConfig].Compatible(m); err != nil {
		return fmt.Sprintf("%s: %v", bpf.NrMapNrConfig, err), nil
	}
	return "", nil
}

// replaceMaps unpins every map of the pin directory (links stay: they keep
// their old programs and maps until upgradeLinks switches them).
func (d *Datapath) replaceMaps(reason string) error {
	entries, err := os.ReadDir(d.pinDir)
	if err != nil {
		return err
	}
	var removed []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(d.pinDir, e.Name())); err != nil {
			return fmt.Errorf("unpin incompatible map %s: %w", e.Name(), err)
		}
		removed = append(removed, e.Name())
	}
	d.notes = append(d.notes, fmt.Sprintf(
		"replaced incompatible pinned maps in %s (%s): unpinned %s; services, endpoints and connection tracking start empty",
		d.pinDir, reason, strings.Join(removed, ", ")))
	return nil
}

// Notes returns what Open had to do beyond loading (maps replaced, links
// upgraded), one line each, for the caller to log.
func (d *Datapath) Notes() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.notes)
}

// Complete reports whether every map is the pinned one. Only a Datapath
// from Inspect on the pins of an older build (see addedMaps) is not: it
// reads as that build's datapath did, but writes to the maps it lacks are
// lost. Open such a datapath to change it.
func (d *Datapath) Complete() bool { return d.standIns == 0 }

// PinDir returns the pin directory the datapath was opened on.
func (d *Datapath) PinDir() string { return d.pinDir }

// Close releases the process's handles. Pinned maps and links, and with
// them the programs, stay in the kernel.
func (d *Datapath) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.objs.Close()
}

// Config is the datapath's global configuration (nr_config).
type Config struct {
	// FastPath redirects packets to pods of this node (nr_endpoints) with
	// bpf_redirect_peer instead of routing them through the host.
	FastPath bool
	// HairpinIP is the source a pod sees when it reaches itself through a
	// service. It must be an address pods never own (link-local).
	HairpinIP netip.Addr
	// ConntrackPerSource bounds the connection-tracking entries one source
	// address may hold in each table (0: the datapath's default, 32768).
	ConntrackPerSource uint32
	// NodeAddr is the node's underlay address: the source of SNATed
	// connections (Service.SNAT), and the source that marks a pod's reply
	// as one to route without the stack. Invalid: none (SNAT entries then
	// drop new connections from outside).
	NodeAddr netip.Addr
}

// Config reads the configuration.
func (d *Datapath) Config() (Config, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var cfg bpf.NrConfig
	if err := d.objs.NrConfig.Lookup(uint32(0), &cfg); err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Config{
		FastPath:           cfg.Flags&bpf.NrCfgFlagsNR_CFG_FASTPATH != 0,
		HairpinIP:          addrFrom(cfg.HairpinIp),
		ConntrackPerSource: cfg.CtPerSource,
		NodeAddr:           nodeAddrFrom(cfg.NodeIp),
	}, nil
}

// SetConfig writes the configuration. Changing HairpinIP breaks hairpin
// connections that are established.
func (d *Datapath) SetConfig(c Config) error {
	if !c.HairpinIP.Is4() {
		return fmt.Errorf("set config: hairpin address %v: %w", c.HairpinIP, ErrInvalid)
	}
	if c.NodeAddr.IsValid() && (!c.NodeAddr.Is4() || c.NodeAddr.IsUnspecified()) {
		return fmt.Errorf("set config: node address %v: %w", c.NodeAddr, ErrInvalid)
	}
	cfg := bpf.NrConfig{Version: bpf.NrLayoutNR_LAYOUT_VERSION, HairpinIp: be32(c.HairpinIP),
		CtPerSource: c.ConntrackPerSource}
	if c.NodeAddr.IsValid() {
		cfg.NodeIp = be32(c.NodeAddr)
	}
	if c.FastPath {
		cfg.Flags |= bpf.NrCfgFlagsNR_CFG_FASTPATH
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.NrConfig.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	return nil
}

func nodeAddrFrom(v uint32) netip.Addr {
	if v == 0 {
		return netip.Addr{}
	}
	return addrFrom(v)
}

// Destroy removes everything netreconcile pinned in pinDir: it detaches
// every link and clsact filter recorded there, unpins every map and
// removes the directory. A missing directory is success.
func Destroy(pinDir string) error {
	if pinDir == "" {
		return fmt.Errorf("destroy datapath: empty pin directory: %w", ErrInvalid)
	}
	pinDir = filepath.Clean(pinDir)
	if _, err := os.Stat(pinDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, a := range listPins(pinDir) {
		if err := detach(pinDir, a); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(pinDir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroy datapath %s: %w", pinDir, err)
	}
	if filepath.Dir(pinDir) == DefaultPinRoot {
		_ = os.Remove(DefaultPinRoot) // the last node's: only when empty
	}
	return nil
}

// CheckPinDir reports, changing nothing, whether Open can use dir: it
// must be (or be created) on a bpf filesystem, or below /sys/fs/bpf when
// nothing is mounted there (Open mounts bpffs then). Callers check it
// before any other change, so that a wrong pin directory fails a run
// before it starts rather than half-way.
func CheckPinDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("empty pin directory: %w", ErrInvalid)
	}
	return bpffsFor(filepath.Clean(dir), false)
}

// ensureBPFFS checks that dir is (or will be created) on a bpf filesystem,
// mounting the conventional one when dir is below it and it is missing.
func ensureBPFFS(dir string) error { return bpffsFor(dir, true) }

func bpffsFor(dir string, mount bool) error {
	existing := dir
	for {
		if _, err := os.Stat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		existing = parent
	}
	if isBPFFS(existing) {
		return nil
	}
	if (dir == bpffsMount || strings.HasPrefix(dir, bpffsMount+"/")) && !isBPFFS(bpffsMount) {
		if !mount {
			return nil
		}
		if err := os.MkdirAll(bpffsMount, 0o755); err != nil {
			return fmt.Errorf("mount bpffs: %w (%w)", ErrUnavailable, err)
		}
		if err := unix.Mount("bpf", bpffsMount, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mount bpffs at %s: %w (%w)", bpffsMount, ErrUnavailable, err)
		}
		// Nothing below the mount point can have existed before.
		return nil
	}
	return fmt.Errorf("%s is not on a bpf filesystem: %w", dir, ErrUnavailable)
}

func isBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && uint32(st.Type) == unix.BPF_FS_MAGIC
}
