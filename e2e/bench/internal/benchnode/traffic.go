package benchnode

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Traffic for the data-plane benchmarks: single-stream iperf3, and short
// TCP connections one after the other (a data-plane bench that needs its
// own flavour keeps it; these are the plain ones).

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

// Add sums o into r (several slices of one measurement).
func (r *Rate) Add(o Rate) {
	r.Done += o.Done
	r.Took += o.Took
	r.Failed += o.Failed
	r.Slow += o.Slow
	r.SynRetrans += o.SynRetrans
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
