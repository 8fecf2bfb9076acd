package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Short connections, measured with raw blocking sockets on threads of
// their own so that Go's poller adds nothing: the server accepts, writes
// one byte and closes first (its side keeps the TIME_WAIT, not the
// client's ephemeral ports); the client connects, reads the byte and the
// end of stream, and closes.

// servers are the short-connection servers of a run.
type servers struct {
	mu  sync.Mutex
	fds []int
	wg  sync.WaitGroup
}

// listen starts a server on ip:port in netns ns.
func (s *servers) listen(ns, ip string, port int) error {
	var fd int
	err := nsutil.Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, sockaddr(netip.MustParseAddr(ip), port)); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Listen(fd, 4096); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listen %s:%d in %s: %w", ip, port, ns, err)
	}
	s.mu.Lock()
	s.fds = append(s.fds, fd)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		runtime.LockOSThread()
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

// stop shuts every listener down (which wakes its blocked accept) and
// waits for the accept loops.
func (s *servers) stop() {
	s.mu.Lock()
	for _, fd := range s.fds {
		unix.Shutdown(fd, unix.SHUT_RDWR)
	}
	s.mu.Unlock()
	s.wg.Wait()
	for _, fd := range s.fds {
		unix.Close(fd)
	}
	s.fds = nil
}

func sockaddr(ip netip.Addr, port int) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
}

// rateResult is one short-connection measurement, or the sum of several.
type rateResult struct {
	done       int           // connections completed
	took       time.Duration // time spent opening them
	failed     int           // connections that did not complete
	slow       int           // completed ones that took over 500 ms
	synRetrans int64         // the client namespace's SYN retransmissions
}

func (r rateResult) perSec() float64 {
	if r.took <= 0 {
		return 0
	}
	return float64(r.done) / r.took.Seconds()
}

func (r *rateResult) add(o rateResult) {
	r.done += o.done
	r.took += o.took
	r.failed += o.failed
	r.slow += o.slow
	r.synRetrans += o.synRetrans
}

// connRate opens short connections from netns ns to dst ("ip:port") one
// after the other for d and returns the rate of completed ones, with the
// client namespace's SYN retransmissions over the run.
func connRate(ctx context.Context, ns, dst string, d time.Duration) (rateResult, error) {
	ap, err := netip.ParseAddrPort(dst)
	if err != nil {
		return rateResult{}, err
	}
	sa := sockaddr(ap.Addr(), int(ap.Port()))
	// one connection first: neighbours resolved, paths warm
	if err := nsutil.Do(ns, func() error { _, err := oneConn(sa); return err }); err != nil {
		return rateResult{}, fmt.Errorf("first connection to %s: %w", dst, err)
	}
	before, err := synRetrans(ctx, ns)
	if err != nil {
		return rateResult{}, err
	}
	var res rateResult
	err = nsutil.Do(ns, func() error {
		start := time.Now()
		end := start.Add(d)
		for time.Now().Before(end) && ctx.Err() == nil {
			t0 := time.Now()
			ok, err := oneConn(sa)
			if err != nil {
				return err
			}
			if !ok {
				res.failed++
				continue
			}
			if time.Since(t0) > 500*time.Millisecond {
				res.slow++
			}
			res.done++
		}
		res.took = time.Since(start)
		return nil
	})
	if err != nil {
		return rateResult{}, err
	}
	after, err := synRetrans(ctx, ns)
	if err != nil {
		return rateResult{}, err
	}
	res.synRetrans = after - before
	return res, ctx.Err()
}

// oneConn makes one short connection on the calling thread. It reports
// false for a connection that failed (timed out, refused, reset) and an
// error only when no socket can be made at all.
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

// synRetrans reads TcpExt TCPSynRetrans of netns ns.
func synRetrans(ctx context.Context, ns string) (int64, error) {
	out, err := nsExec(ctx, ns, "", "cat", "/proc/net/netstat")
	if err != nil {
		return 0, err
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
	return 0, errors.New("no TcpExt TCPSynRetrans in /proc/net/netstat")
}
