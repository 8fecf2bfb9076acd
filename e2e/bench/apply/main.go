// Command apply measures netreconcile's apply and no-op plan for N veth
// pods beside the floor: the same veth pairs, addresses and routes made
// with raw netlink calls in one process. It prints one table; compare
// figures only within one run (the machine is shared and noisy).
//
//	sudo go run ./e2e/bench/apply [-n 10,100,500] [-runs 5]
//
// Everything lives in namespaces named nrb<random>-*, removed at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

func main() {
	sizes := flag.String("n", "10,100,500", "pod counts")
	runs := flag.Int("runs", 5, "no-op plans per size (median reported)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the no-op plans here")
	flag.Parse()
	profile = *cpuprofile
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench needs root (it builds namespaces)")
		os.Exit(1)
	}
	fmt.Printf("%6s %12s %12s %8s %14s %14s %12s\n", "pods", "floor", "apply", "ratio", "no-op plan", "observe/pod", "destroy")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 4000 {
			fmt.Fprintf(os.Stderr, "bad size %q\n", s)
			os.Exit(1)
		}
		if err := row(n, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
	}
}

var profile string

func randID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "nrb" + hex.EncodeToString(b)
}

// nodeNS makes a node namespace with an uplink carrying 172.31.1.2/24.
func nodeNS(id string) (string, error) {
	name := id + "-node"
	if err := nsutil.Create(name); err != nil {
		return "", err
	}
	fd, err := nsutil.Open(name)
	if err != nil {
		return "", err
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		return "", err
	}
	defer h.Close()
	la := netlink.NewLinkAttrs()
	la.Name = "eth0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0p"}); err != nil {
		return "", err
	}
	up, _ := h.LinkByName("eth0")
	addr, _ := netlink.ParseAddr("172.31.1.2/24")
	if err := h.AddrAdd(up, addr); err != nil {
		return "", err
	}
	return name, h.LinkSetUp(up)
}

func topo(id string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.0.0.0/8}\n")
	fmt.Fprintf(&b, "nodes:\n  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.1.0.0/16}\npods:\n", id)
	for i := range n {
		fmt.Fprintf(&b, "  - {name: p%d, namespace: b, node: %s, ip: 10.1.%d.%d, netns: %s-p%d}\n", i, id, 1+i/250, 1+i%250, id, i)
	}
	return b.String()
}

func row(n, runs int) error {
	floor, err := measureFloor(n)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	id := randID()
	node, err := nodeNS(id)
	if err != nil {
		return err
	}
	defer nsutil.Delete(node)
	r, err := spec.LoadBytes(id+".yaml", []byte(topo(id, n)))
	if err != nil {
		return err
	}
	stateDir, err := os.MkdirTemp("", "nrbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	e := &reconcile.Engine{
		Cfg: &reconcile.Config{Node: id, NodeNetns: node, StateDir: stateDir,
			Drivers: drivers.NewRegistry(veth.Driver{}, bridge.Driver{})},
		Log: logr.Discard(),
	}
	defer func() {
		if _, err := e.Destroy(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "destroy:", err)
		}
	}()
	t0 := time.Now()
	if _, err := e.Apply(context.Background(), r); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	apply := time.Since(t0)
	var plans, observes []time.Duration
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	for range runs {
		t := time.Now()
		res, err := e.Plan(r, nil)
		if err != nil {
			return err
		}
		plans = append(plans, time.Since(t))
		if !res.Plan.Empty() {
			return fmt.Errorf("plan after apply is not empty: %d changes", len(res.Plan.Changes))
		}
		t = time.Now()
		if _, err := reconcile.Observe(e.Cfg, mustDesired(e, r)); err != nil {
			return err
		}
		observes = append(observes, time.Since(t))
	}
	t0 = time.Now()
	if _, err := e.Destroy(context.Background()); err != nil {
		return err
	}
	destroy := time.Since(t0)
	fmt.Printf("%6d %12s %12s %7.2fx %14s %14s %12s\n", n, round(floor), round(apply),
		float64(apply)/float64(floor), round(median(plans)), round(median(observes)/time.Duration(n)), round(destroy))
	return nil
}

func mustDesired(e *reconcile.Engine, r *spec.Resolved) *state.State {
	d, err := reconcile.Desired(e.Cfg, r, reconcile.Uplink{Found: true, MTU: 1500})
	if err != nil {
		panic(err)
	}
	return d
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func round(d time.Duration) string {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond).String()
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(100 * time.Nanosecond).String()
}

// measureFloor creates what apply creates for n veth pods (netns, veth
// pair with the peer in it, pod address and routes, node /32 routes) with
// direct netlink calls and no observation, diffing or verification.
func measureFloor(n int) (time.Duration, error) {
	id := randID()
	node, err := nodeNS(id)
	if err != nil {
		return 0, err
	}
	defer nsutil.Delete(node)
	nodeFd, err := nsutil.Open(node)
	if err != nil {
		return 0, err
	}
	defer nodeFd.Close()
	h, err := netlink.NewHandleAt(nodeFd)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	var names []string
	defer func() {
		for _, name := range names {
			_ = nsutil.Delete(name)
		}
	}()
	gw := net.ParseIP("169.254.1.1")
	mac, _ := net.ParseMAC(veth.HostMAC)
	t0 := time.Now()
	for i := range n {
		name := fmt.Sprintf("%s-p%d", id, i)
		if err := nsutil.Create(name); err != nil {
			return 0, err
		}
		names = append(names, name)
		fd, err := nsutil.Open(name)
		if err != nil {
			return 0, err
		}
		ph, err := netlink.NewHandleAt(fd)
		if err != nil {
			fd.Close()
			return 0, err
		}
		host := fmt.Sprintf("nrf%d", i)
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU, la.HardwareAddr = host, 1500, mac
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(fd))}); err != nil {
			return 0, err
		}
		ip := net.IPv4(10, 1, byte(1+i/250), byte(1+i%250))
		lo, _ := ph.LinkByName("lo")
		_ = ph.LinkSetUp(lo)
		eth0, err := ph.LinkByName("eth0")
		if err != nil {
			return 0, err
		}
		_ = ph.AddrAdd(eth0, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}})
		_ = ph.LinkSetUp(eth0)
		_ = ph.NeighSet(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, IP: gw, HardwareAddr: mac, State: netlink.NUD_PERMANENT, Family: netlink.FAMILY_V4})
		_ = ph.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw, Flags: int(netlink.FLAG_ONLINK)})
		hl, err := h.LinkByName(host)
		if err != nil {
			return 0, err
		}
		_ = h.LinkSetUp(hl)
		if err := h.RouteAdd(&netlink.Route{LinkIndex: hl.Attrs().Index, Dst: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)},
			Scope: netlink.SCOPE_LINK}); err != nil {
			return 0, err
		}
		ph.Close()
		fd.Close()
	}
	d := time.Since(t0)
	_ = netns.None()
	return d, nil
}
