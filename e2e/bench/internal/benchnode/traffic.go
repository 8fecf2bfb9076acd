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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Traffic for the data-plane benchmarks: single-stream iperf3, and short
// TCP connections one after the other (a data-plane bench that needs its
// own flavour keeps it; these are the plain ones).

// EnsureIperf3 installs iperf3 with apt-get when it is missing.
func EnsureIperf3(ctx context.Context) error {
	if _, err := exec.LookPath("iperf3"); err == nil {
		return nil
	}
	fmt.Fprintln(os.Stderr, "iperf3 missing: apt-get install -y iperf3")
	c := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "iperf3")
	c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("install iperf3: %w\n%s", err, Tail(string(out), 15))
	}
	return nil
}

// Iperf runs one single-stream iperf3 test of secs seconds: a one-off
// server on bind in netns srvNS (killed by its process group if still
// there at the end), the client in cliNS connecting to dst (bind itself,
// or an address translated to it). It returns the Gbit/s received and the
// sender's retransmissions.
func Iperf(ctx context.Context, srvNS string, bind netip.AddrPort, cliNS string, dst netip.AddrPort, secs int) (float64, int, error) {
	port := int(bind.Port())
	srv := exec.Command("ip", "netns", "exec", srvNS, "iperf3", "-s", "-1", "-B", bind.Addr().String(), "-p", strconv.Itoa(port))
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		return 0, 0, fmt.Errorf("start iperf3 server in %s: %w", srvNS, err)
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
	if err := waitListening(ctx, srvNS, port, done); err != nil {
		return 0, 0, fmt.Errorf("iperf3 server in %s: %w\n%s", srvNS, err, srvOut.String())
	}
	cctx, cancel := context.WithTimeout(ctx, time.Duration(secs+30)*time.Second)
	defer cancel()
	cli := exec.CommandContext(cctx, "ip", "netns", "exec", cliNS, "iperf3", "-c", dst.Addr().String(), "-p", strconv.Itoa(int(dst.Port())),
		"-t", strconv.Itoa(secs), "-J")
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
		return 0, 0, fmt.Errorf("iperf3 -c %s: %s", dst, j.Error)
	case err != nil:
		return 0, 0, fmt.Errorf("iperf3 -c %s: %w\n%s", dst, err, Tail(string(out), 15))
	case jerr != nil:
		return 0, 0, fmt.Errorf("iperf3 -c %s output: %w", dst, jerr)
	}
	return j.End.Received.BitsPerSecond / 1e9, j.End.Sent.Retransmits, nil
}

// waitListening waits until something listens on TCP port in ns, without
// connecting (a one-off iperf3 server would take a probe for its test).
func waitListening(ctx context.Context, ns string, port int, exited <-chan struct{}) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port)).Output()
		if strings.TrimSpace(string(out)) != "" {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("not listening after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ConnServers are servers of short connections: each accepts, writes one
// byte and closes first, so that the TIME_WAIT stays on its side and the
// client's ephemeral ports are free again at once. They run on threads of
// their own, with blocking sockets, so that Go's poller adds nothing.
type ConnServers struct {
	mu  sync.Mutex
	fds []int
	wg  sync.WaitGroup
}

// Listen starts a server on ip:port in netns ns.
func (s *ConnServers) Listen(ns string, ip netip.Addr, port int) error {
	var fd int
	err := nsutil.Do(ns, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err == nil {
			if err = unix.Bind(fd, sockaddr(ip, port)); err == nil {
				err = unix.Listen(fd, 4096)
			}
		}
		if err != nil {
			unix.Close(fd)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("listen on %s:%d in %s: %w", ip, port, ns, err)
	}
	s.mu.Lock()
	s.fds = append(s.fds, fd)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		runtime.LockOSThread() // blocked in accept: a thread of its own
		one := []byte("x")
		for {
			nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
				continue
			}
			if err != nil {
				return // shut down
			}
			unix.Write(nfd, one)
			unix.Close(nfd)
		}
	}()
	return nil
}

// Stop shuts every listener down (which wakes its blocked accept), waits
// for the accept loops and closes the sockets.
func (s *ConnServers) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fd := range s.fds {
		unix.Shutdown(fd, unix.SHUT_RDWR)
	}
	s.wg.Wait()
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	s.fds = nil
}

func sockaddr(ip netip.Addr, port int) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
}

// Rate is one short-connection measurement.
type Rate struct {
	Done       int           // connections completed
	Took       time.Duration // time spent opening them
	Failed     int           // connections that did not complete
	Slow       int           // completed ones that took over 500 ms
	SynRetrans int64         // the client namespace's SYN retransmissions
}

// PerSec is completed connections per second.
func (r Rate) PerSec() float64 {
	if r.Took <= 0 {
		return 0
	}
	return float64(r.Done) / r.Took.Seconds()
}

// ConnRate opens short connections from netns ns to dst one after the
// other, on one thread, for d, after one untimed connection (neighbours
// resolved, paths warm).
func ConnRate(ctx context.Context, ns string, dst netip.AddrPort, d time.Duration) (Rate, error) {
	sa := sockaddr(dst.Addr(), int(dst.Port()))
	if err := nsutil.Do(ns, func() error { _, err := oneConn(sa); return err }); err != nil {
		return Rate{}, fmt.Errorf("first connection to %s from %s: %w", dst, ns, err)
	}
	before, err := synRetrans(ns)
	if err != nil {
		return Rate{}, err
	}
	var r Rate
	err = nsutil.Do(ns, func() error {
		start := time.Now()
		for end := start.Add(d); time.Now().Before(end) && ctx.Err() == nil; {
			t0 := time.Now()
			ok, err := oneConn(sa)
			switch {
			case err != nil:
				return err
			case !ok:
				r.Failed++
				continue
			case time.Since(t0) > 500*time.Millisecond:
				r.Slow++
			}
			r.Done++
		}
		r.Took = time.Since(start)
		return nil
	})
	if err != nil {
		return Rate{}, fmt.Errorf("connections to %s from %s: %w", dst, ns, err)
	}
	after, err := synRetrans(ns)
	r.SynRetrans = after - before
	if err == nil {
		err = ctx.Err()
	}
	return r, err
}

// oneConn makes one short connection on the calling thread: false for
// one that failed (timed out, refused, reset), an error only when no
// socket can be made.
func oneConn(sa *unix.SockaddrInet4) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 3}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Connect(fd, sa); err != nil {
		return false, nil
	}
	buf := make([]byte, 8)
	if n, err := unix.Read(fd, buf); n != 1 || err != nil {
		return false, nil
	}
	// the server closes first: wait for its FIN
	if n, err := unix.Read(fd, buf); n != 0 || err != nil {
		return false, nil
	}
	return true, nil
}

// synRetrans reads TcpExt TCPSynRetrans of netns ns (a thread inside it
// reads its own /proc/net).
func synRetrans(ns string) (int64, error) {
	var out []byte
	err := nsutil.Do(ns, func() error {
		var err error
		out, err = os.ReadFile("/proc/thread-self/net/netstat")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read netstat of %s: %w", ns, err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		rest, ok := strings.CutPrefix(line, "TcpExt: ")
		if !ok {
			continue
		}
		if names == nil {
			names = strings.Fields(rest)
			continue
		}
		for i, v := range strings.Fields(rest) {
			if i < len(names) && names[i] == "TCPSynRetrans" {
				return strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no TcpExt TCPSynRetrans in the netstat of %s", ns)
}
