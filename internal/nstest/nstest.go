package nstest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Banner is the banner of ServeEcho and ServeEchoUDP.
const Banner = "nstest-echo"

// Timeouts used by the helpers that take none.
const (
	// CheckTimeout bounds one CheckTCP or CheckUDP round trip.
	CheckTimeout = 3 * time.Second
	// TransferTimeout bounds one Transfer.
	TransferTimeout = 2 * time.Minute
	// idleTimeout closes server connections whose client went silent, so
	// that a test that forgets to close does not leak goroutines forever.
	idleTimeout = time.Minute
	// udpResend is how often TryUDP repeats its datagram: a datagram lost
	// while routes or neighbours settle should not fail a check.
	udpResend = 200 * time.Millisecond
)

var (
	// ErrTimeout is wrapped by the errors of TryTCP, TryUDP and Transfer
	// when no answer came in time: the traffic was dropped somewhere.
	ErrTimeout = errors.New("no answer in time")
	// ErrBadReply is wrapped when an answer came but was not the echo.
	ErrBadReply = errors.New("unexpected reply")
)

// IsRefused reports whether err is a refusal: a TCP reset or an ICMP
// port (or administratively) unreachable for UDP.
func IsRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// IsTimeout reports whether err means that nothing answered in time.
func IsTimeout(err error) bool {
	if errors.Is(err, ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// inNetns runs fn in nsRef ("" is the caller's namespace) and names the
// namespace in the error.
func inNetns(nsRef, op string, fn func() error) error {
	if err := nsutil.Do(nsRef, fn); err != nil {
		return fmt.Errorf("%s in netns %q: %w", op, nsRef, err)
	}
	return nil
}

// ListenTCP listens on addr ("ip:port"; port 0 picks one) in nsRef.
func ListenTCP(nsRef, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNetns(nsRef, "listen tcp "+addr, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// ListenUDP opens a UDP socket bound to addr in nsRef.
func ListenUDP(nsRef, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := inNetns(nsRef, "listen udp "+addr, func() (err error) {
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	return pc, err
}

// DialTCP connects to addr from nsRef. A dial that neither completes nor
// is refused within timeout returns an error wrapping ErrTimeout.
func DialTCP(nsRef, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNetns(nsRef, "dial tcp "+addr, func() (err error) {
		// The dial waits on the runtime poller while this goroutine
		// stays locked to the switched thread; only the socket() call
		// needs to happen there.
		d := net.Dialer{Timeout: timeout}
		c, err = d.Dial("tcp", addr)
		if err != nil && IsTimeout(err) {
			err = fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		return err
	})
	return c, err
}

// DialUDP returns a UDP socket in nsRef connected to addr. Being
// connected, it reports ICMP unreachables as errors on the next read.
// timeout is accepted for symmetry with DialTCP: connecting UDP sends
// nothing.
func DialUDP(nsRef, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNetns(nsRef, "dial udp "+addr, func() (err error) {
		d := net.Dialer{Timeout: timeout}
		c, err = d.Dial("udp", addr)
		return err
	})
	return c, err
}

// ServeEcho serves the echo protocol (see the package documentation) on
// l with Banner. It returns at once; serving stops when l is closed.
func ServeEcho(l net.Listener) { ServeEchoAs(l, Banner) }

// ServeEchoAs is ServeEcho with the given banner, e.g. the pod's name, so
// that a client behind a service sees which backend answered.
func ServeEchoAs(l net.Listener, banner string) {
	serve(l, func(c net.Conn) {
		if _, err := io.WriteString(c, banner+"\n"); err != nil {
			return
		}
		buf := make([]byte, 32<<10)
		for {
			c.SetDeadline(time.Now().Add(idleTimeout))
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// ServeSink serves the sink protocol (see the package documentation) on
// l, for Transfer. It returns at once; serving stops when l is closed.
func ServeSink(l net.Listener) {
	serve(l, func(c net.Conn) {
		var total int64
		buf := make([]byte, 256<<10)
		for {
			c.SetReadDeadline(time.Now().Add(idleTimeout))
			n, err := c.Read(buf)
			total += int64(n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return
			}
		}
		c.SetWriteDeadline(time.Now().Add(idleTimeout))
		fmt.Fprintf(c, "%d\n", total)
	})
}

func serve(l net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				// Closed listener (or a fatal error): stop serving.
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// ServeEchoUDP answers every datagram on pc with Banner, a newline and the
// datagram. It returns at once; serving stops when pc is closed.
func ServeEchoUDP(pc net.PacketConn) { ServeEchoUDPAs(pc, Banner) }

// ServeEchoUDPAs is ServeEchoUDP with the given banner.
func ServeEchoUDPAs(pc net.PacketConn, banner string) {
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				// ICMP errors for earlier answers can surface here;
				// they concern one client, not the server.
				continue
			}
			reply := append([]byte(banner+"\n"), buf[:n]...)
			pc.WriteTo(reply, from)
		}
	}()
}

// StartEchoTCP listens on addr in nsRef, serves the echo protocol with
// banner (Banner if empty) and closes the listener at cleanup.
func StartEchoTCP(t testing.TB, nsRef, addr, banner string) net.Listener {
	t.Helper()
	l, err := ListenTCP(nsRef, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if banner == "" {
		banner = Banner
	}
	ServeEchoAs(l, banner)
	return l
}

// StartEchoUDP is StartEchoTCP for UDP.
func StartEchoUDP(t testing.TB, nsRef, addr, banner string) net.PacketConn {
	t.Helper()
	pc, err := ListenUDP(nsRef, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if banner == "" {
		banner = Banner
	}
	ServeEchoUDPAs(pc, banner)
	return pc
}

// StartSink listens on addr in nsRef, serves the sink protocol and closes
// the listener at cleanup.
func StartSink(t testing.TB, nsRef, addr string) net.Listener {
	t.Helper()
	l, err := ListenTCP(nsRef, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ServeSink(l)
	return l
}

func payload() []byte {
	b := make([]byte, 12)
	rand.Read(b)
	return []byte("nstest " + hex.EncodeToString(b))
}

// TryTCP makes one echo round trip from fromNs to the echo server at
// toAddr and returns the server's banner. For negative checks: IsRefused
// and IsTimeout classify the error.
func TryTCP(fromNs, toAddr string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	c, err := DialTCP(fromNs, toAddr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	p := payload()
	if _, err := c.Write(p); err != nil {
		return "", fmt.Errorf("tcp %s: send: %w", toAddr, timeoutErr(err))
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return "", fmt.Errorf("tcp %s: close write: %w", toAddr, err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("tcp %s: receive (got %q): %w", toAddr, reply, timeoutErr(err))
	}
	return parseReply(toAddr, reply, p)
}

// TryUDP makes one echo round trip over UDP, repeating the datagram every
// 200ms until an echo arrives, the port is refused, or timeout passes.
func TryUDP(fromNs, toAddr string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	c, err := DialUDP(fromNs, toAddr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	p := payload()
	buf := make([]byte, 64<<10)
	for time.Now().Before(deadline) {
		if _, err := c.Write(p); err != nil {
			return "", fmt.Errorf("udp %s: send: %w", toAddr, err)
		}
		next := time.Now().Add(udpResend)
		if next.After(deadline) {
			next = deadline
		}
		c.SetReadDeadline(next)
		for {
			n, err := c.Read(buf)
			if IsTimeout(err) {
				break
			}
			if err != nil {
				return "", fmt.Errorf("udp %s: receive: %w", toAddr, err)
			}
			// Answers to earlier copies of the datagram are fine; others
			// (another client's stale reply) are skipped.
			if bytes.HasSuffix(buf[:n], p) {
				return parseReply(toAddr, buf[:n], p)
			}
		}
	}
	return "", fmt.Errorf("udp %s: %w after %v", toAddr, ErrTimeout, timeout)
}

func timeoutErr(err error) error {
	if IsTimeout(err) && !errors.Is(err, ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

func parseReply(to string, reply, sent []byte) (string, error) {
	banner, echo, ok := bytes.Cut(reply, []byte("\n"))
	if !ok || !bytes.Equal(echo, sent) {
		return "", fmt.Errorf("%s: %w: %q (sent %q)", to, ErrBadReply, reply, sent)
	}
	return string(banner), nil
}

// CheckTCP requires a TCP echo round trip from fromNs to toAddr within
// CheckTimeout and returns the answering server's banner.
func CheckTCP(t testing.TB, fromNs, toAddr string) string {
	t.Helper()
	banner, err := TryTCP(fromNs, toAddr, CheckTimeout)
	if err != nil {
		t.Fatalf("tcp from netns %q to %s: %v", fromNs, toAddr, err)
	}
	return banner
}

// CheckUDP requires a UDP echo round trip from fromNs to toAddr within
// CheckTimeout and returns the answering server's banner.
func CheckUDP(t testing.TB, fromNs, toAddr string) string {
	t.Helper()
	banner, err := TryUDP(fromNs, toAddr, CheckTimeout)
	if err != nil {
		t.Fatalf("udp from netns %q to %s: %v", fromNs, toAddr, err)
	}
	return banner
}

// Transfer streams n bytes over one TCP connection from fromNs to the sink
// at toAddr (see ServeSink) and returns how many bytes the sink counted
// and how long it took from connect to the sink's answer. The whole
// transfer must finish within TransferTimeout.
func Transfer(fromNs, toAddr string, n int64) (int64, time.Duration, error) {
	start := time.Now()
	c, err := DialTCP(fromNs, toAddr, CheckTimeout)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	c.SetDeadline(start.Add(TransferTimeout))
	chunk := make([]byte, 256<<10)
	for left := n; left > 0; {
		m := min(left, int64(len(chunk)))
		w, err := c.Write(chunk[:m])
		left -= int64(w)
		if err != nil {
			return 0, time.Since(start), fmt.Errorf("transfer to %s: send (%d of %d bytes left): %w", toAddr, left, n, timeoutErr(err))
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, time.Since(start), fmt.Errorf("transfer to %s: close write: %w", toAddr, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	d := time.Since(start)
	if err != nil {
		return 0, d, fmt.Errorf("transfer to %s: read count (got %q): %w", toAddr, line, timeoutErr(err))
	}
	got, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		return 0, d, fmt.Errorf("transfer to %s: %w: count %q", toAddr, ErrBadReply, line)
	}
	return got, d, nil
}
