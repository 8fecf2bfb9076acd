package observe

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/state"
)

// Attributes of RTM_NEWNETCONF and RTM_NEWNEIGHTBL (linux/netconf.h,
// linux/neighbour.h); golang.org/x/sys does not name them.
const (
	netconfaIfindex    = 1
	netconfaProxyNeigh = 5 // net.ipv4.conf.<if>.proxy_arp
	ndtaName           = 1
	ndtaParms          = 6
	ndtpaIfindex       = 1
	ndtpaProxyDelay    = 13 // net.ipv4.neigh.<if>.proxy_delay, in ms
)

// family is the one-byte header (netconfmsg, ndtmsg) of both dumps.
type family byte

func (f family) Len() int          { return 4 }
func (f family) Serialize() []byte { return []byte{byte(f), 0, 0, 0} }

// proxyARPOf reads proxyARPByIndex's answer for one interface from its
// two sysctls, in the calling thread's namespace.
func proxyARPOf(ifname string) (bool, error) {
	arp, err := os.ReadFile(state.SysctlPath(ifname, "conf/proxy_arp"))
	if err != nil {
		return false, err
	}
	delay, err := os.ReadFile(state.SysctlPath(ifname, "neigh/proxy_delay"))
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(arp)) == "1" && strings.TrimSpace(string(delay)) == "0", nil
}

// proxyARPByIndex reads, in the calling thread's namespace, which
// interfaces answer ARP for others at once: proxy_arp on and proxy_delay
// 0. Two netlink dumps instead of two sysctl files per interface.
func proxyARPByIndex() (map[int]bool, error) {
	arp, err := dumpAttrs(unix.RTM_GETNETCONF, unix.RTM_NEWNETCONF)
	if err != nil {
		return nil, fmt.Errorf("dump netconf: %w", err)
	}
	on := map[int]bool{}
	for _, attrs := range arp {
		idx, v := -1, uint32(0)
		for _, a := range attrs {
			switch a.Attr.Type {
			case netconfaIfindex:
				idx = int(int32(native.Uint32(a.Value)))
			case netconfaProxyNeigh:
				v = native.Uint32(a.Value)
			}
		}
		if idx > 0 && v == 1 {
			on[idx] = true
		}
	}
	tbls, err := dumpAttrs(unix.RTM_GETNEIGHTBL, unix.RTM_NEWNEIGHTBL)
	if err != nil {
		return nil, fmt.Errorf("dump neighbour tables: %w", err)
	}
	out := map[int]bool{}
	for _, attrs := range tbls {
		var name string
		var parms []syscall.NetlinkRouteAttr
		for _, a := range attrs {
			switch a.Attr.Type {
			case ndtaName:
				name = nl.BytesToString(a.Value)
			case ndtaParms:
				if parms, err = nl.ParseRouteAttr(a.Value); err != nil {
					return nil, fmt.Errorf("neighbour table parameters: %w", err)
				}
			}
		}
		if name != "arp_cache" {
			continue
		}
		idx, delay := 0, uint64(1)
		for _, p := range parms {
			switch {
			case p.Attr.Type == ndtpaIfindex && len(p.Value) >= 4:
				idx = int(native.Uint32(p.Value))
			case p.Attr.Type == ndtpaProxyDelay && len(p.Value) >= 8:
				delay = native.Uint64(p.Value)
			}
		}
		if idx > 0 && delay == 0 && on[idx] {
			out[idx] = true
		}
	}
	return out, nil
}

var native = binary.NativeEndian

// dumpAttrs runs one AF_INET dump and returns each message's attributes
// (after the 4-byte family header).
func dumpAttrs(req, res uint16) ([][]syscall.NetlinkRouteAttr, error) {
	r := nl.NewNetlinkRequest(int(req), unix.NLM_F_DUMP)
	r.AddData(family(unix.AF_INET))
	msgs, err := r.Execute(unix.NETLINK_ROUTE, res)
	if err != nil {
		return nil, err
	}
	out := make([][]syscall.NetlinkRouteAttr, 0, len(msgs))
	for _, m := range msgs {
		if len(m) < 4 {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[4:])
		if err != nil {
			return nil, err
		}
		out = append(out, attrs)
	}
	return out, nil
}
