package datapath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/bpf"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Source is what a pod may send as (bpf/guard.h): frames leaving it
// through the interface it is bound to must carry MAC as their Ethernet
// source, and IP as their IPv4 (and ARP sender) address.
type Source struct {
	IP  netip.Addr
	MAC net.HardwareAddr
}

func (s Source) validate() error {
	switch {
	case !s.IP.Is4():
		return fmt.Errorf("source %v: address is not IPv4: %w", s.IP, ErrInvalid)
	case len(s.MAC) != 6:
		return fmt.Errorf("source %v: MAC %q is not Ethernet: %w", s.IP, s.MAC, ErrInvalid)
	}
	return nil
}

// Binding is one entry of nr_src: the source bound to an interface.
type Binding struct {
	NetnsInode uint64 // the interface's namespace (nsfs inode)
	IfIndex    int
	Source
}

// HardwareAddr returns the MAC of ifname in the namespace nsRef.
func HardwareAddr(nsRef, ifname string) (net.HardwareAddr, error) {
	h, err := nsutil.Handle(nsRef)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("look up %s in netns %q: %w", ifname, nsRef, err)
	}
	return l.Attrs().HardwareAddr, nil
}

// Bind binds src to ifname in the namespace nsRef, the device that carries
// a pod's programs: its host-side veth for veth and bridge pods, the pod's
// own interface for macvlan and ipvlan pods. It replaces an earlier
// binding of the same device. Call it before attaching the programs, or
// they drop what the pod sends.
func (d *Datapath) Bind(nsRef, ifname string, src Source) error {
	if err := src.validate(); err != nil {
		return fmt.Errorf("bind %s in netns %q: %w", ifname, nsRef, err)
	}
	key, err := ifaceKey(nsRef, ifname)
	if err != nil {
		return fmt.Errorf("bind %s in netns %q: %w", ifname, nsRef, err)
	}
	v := bpf.NrSrcBinding{Ip: be32(src.IP), NetnsIno: nsInode(nsRef), Ifindex: key.Ifindex}
	copy(v.Mac[:], src.MAC)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.NrSrc.Put(&key, &v); err != nil {
		return fmt.Errorf("bind %s in netns %q to %v: write nr_src: %w", ifname, nsRef, src.IP, err)
	}
	return nil
}

// unbindIface removes the binding of ifname in nsRef, if both still
// exist (a binding of a vanished interface or namespace names a cookie
// or ifindex that is never handed out again, and matches no packet).
// Called with d.mu held.
func (d *Datapath) unbindIface(nsRef, ifname string) error {
	if !nsutil.Exists(nsRef) {
		return nil
	}
	key, err := ifaceKey(nsRef, ifname)
	if err != nil {
		return nil // the interface is gone
	}
	if err := d.objs.NrSrc.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unbind %s in netns %q: delete: %w", ifname, nsRef, err)
	}
	return nil
}

// ifaceKey is the nr_src key of ifname in nsRef: the namespace's cookie and
// the interface's index, both read by a thread inside the namespace.
func ifaceKey(nsRef, ifname string) (bpf.NrSrcKey, error) {
	var key bpf.NrSrcKey
	err := nsutil.Do(nsRef, func() error {
		index, err := ifIndex(ifname)
		if err != nil {
			return err
		}
		cookie, err := netnsCookie()
		if err != nil {
			return err
		}
		key = bpf.NrSrcKey{Netns: cookie, Ifindex: uint32(index)}
		return nil
	})
	return key, err
}

// Bindings reads every binding.
func (d *Datapath) Bindings() ([]Binding, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bindings()
}

func (d *Datapath) bindings() ([]Binding, error) {
	var out []Binding
	err := scan(d.objs.NrSrc, func(_ *bpf.NrSrcKey, v *bpf.NrSrcBinding) {
		out = append(out, Binding{NetnsInode: v.NetnsIno, IfIndex: int(v.Ifindex),
			Source: Source{IP: addrFrom(v.Ip), MAC: net.HardwareAddr(slices.Clone(v.Mac[:]))}})
	})
	if err != nil {
		return nil, fmt.Errorf("read nr_src: %w", err)
	}
	return out, nil
}

// netnsCookie returns the cookie of the calling thread's network
// namespace, the identity bpf_get_netns_cookie gives the programs.
func netnsCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("netns cookie: %w", err)
	}
	defer unix.Close(fd)
	v, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("netns cookie: %w", err)
	}
	return v, nil
}
