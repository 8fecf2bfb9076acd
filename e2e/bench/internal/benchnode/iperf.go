package benchnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// IperfResult is what one iperf3 test measured.
type IperfResult struct {
	Gbps        float64 // received
	Retransmits int     // by the sender
}

// Iperf runs one single-stream iperf3 test of secs seconds: a one-off
// server bound to bindIP:port in srvNS, the client in cliNS connecting to
// dst:port (a pod IP, a clusterIP or 127.0.0.1).
func Iperf(ctx context.Context, srvNS, bindIP, cliNS, dst string, port, secs int) (IperfResult, error) {
	b, err := netip.ParseAddr(bindIP)
	if err != nil {
		return IperfResult{}, fmt.Errorf("iperf3 bind address: %w", err)
	}
	d, err := netip.ParseAddr(dst)
	if err != nil {
		return IperfResult{}, fmt.Errorf("iperf3 destination: %w", err)
	}
	return IperfTo(ctx, srvNS, netip.AddrPortFrom(b, uint16(port)), cliNS, netip.AddrPortFrom(d, uint16(port)), secs)
}

// IperfTo runs one single-stream iperf3 test of secs seconds: a one-off
// server on bind in srvNS (killed by its process group if it is still
// there), the client in cliNS connecting to dst (bind itself, or an
// address translated to it, such as a clusterIP and its port).
func IperfTo(ctx context.Context, srvNS string, bind netip.AddrPort, cliNS string, dst netip.AddrPort, secs int) (IperfResult, error) {
	port := int(bind.Port())
	srv := exec.Command("ip", "netns", "exec", srvNS, "iperf3", "-s", "-1", "-B", bind.Addr().String(), "-p", fmt.Sprint(port))
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		return IperfResult{}, fmt.Errorf("start iperf3 server in %s: %w", srvNS, err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Wait(); close(done) }()
	defer func() {
		select {
		case <-done:
		default:
			_ = syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	if err := WaitListening(ctx, srvNS, port, done); err != nil {
		return IperfResult{}, fmt.Errorf("iperf3 server in %s: %w\n%s", srvNS, err, srvOut.String())
	}
	return iperfClient(ctx, cliNS, dst, secs)
}

// iperfClient runs the client side of IperfTo and reads its JSON report.
func iperfClient(ctx context.Context, cliNS string, dst netip.AddrPort, secs int) (IperfResult, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Duration(secs+30)*time.Second)
	defer cancel()
	cli := exec.CommandContext(cctx, "ip", "netns", "exec", cliNS, "iperf3", "-c", dst.Addr().String(),
		"-p", fmt.Sprint(dst.Port()), "-t", fmt.Sprint(secs), "-J")
	cli.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cli.Cancel = func() error { return syscall.Kill(-cli.Process.Pid, syscall.SIGKILL) }
	out, err := cli.Output()
	var j struct {
		End struct {
			Sent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			Received struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	jerr := json.Unmarshal(out, &j)
	switch {
	case jerr == nil && j.Error != "":
		return IperfResult{}, fmt.Errorf("iperf3 -c %s: %s", dst, j.Error)
	case err != nil:
		return IperfResult{}, fmt.Errorf("iperf3 -c %s: %w\n%s", dst, err, Tail(string(out), 15))
	case jerr != nil:
		return IperfResult{}, fmt.Errorf("iperf3 -c %s output: %w", dst, jerr)
	}
	return IperfResult{Gbps: j.End.Received.BitsPerSecond / 1e9, Retransmits: j.End.Sent.Retransmits}, nil
}

// WaitListening waits until something listens on TCP port in ns, without
// connecting (a one-off iperf3 server would take a probe for its test),
// for at most 5 s or until exited is closed.
func WaitListening(ctx context.Context, ns string, port int, exited <-chan struct{}) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port)).Output()
		if strings.TrimSpace(string(out)) != "" {
			return nil
		}
		select {
		case <-exited:
			return errors.New("iperf3 server exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("iperf3 server not listening after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// EnsureTools installs, with apt-get, the Debian package of each command
// of need (command -> package) that is missing.
func EnsureTools(ctx context.Context, need map[string]string) error {
	for cmd, pkg := range need {
		if _, err := exec.LookPath(cmd); err == nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "%s missing: apt-get install -y %s\n", cmd, pkg)
		c := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", pkg)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("install %s: %w\n%s", pkg, err, Tail(string(out), 15))
		}
	}
	return nil
}
