package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenNotify is what systemd does for a Type=notify service: a unix
// datagram socket whose address the service finds in NOTIFY_SOCKET.
func listenNotify(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return c
}

func recvNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyProtocol(t *testing.T) {
	for _, addr := range []string{
		filepath.Join(t.TempDir(), "notify.sock"),
		"@netreconcile-test-" + strconv.Itoa(os.Getpid()), // abstract, as systemd uses
	} {
		t.Run(addr[:1], func(t *testing.T) {
			c := listenNotify(t, addr)
			n := &Notifier{}

			n.Ready("converged; 2 pods, 9 objects")
			if got := recvNotify(t, c); got != "READY=1\nSTATUS=converged; 2 pods, 9 objects" {
				t.Errorf("ready: %q", got)
			}
			n.Status("converged; 2 pods, 9 objects") // unchanged: nothing sent
			n.Status("converged; 3 pods, 12 objects")
			if got := recvNotify(t, c); got != "STATUS=converged; 3 pods, 12 objects" {
				t.Errorf("status: %q", got)
			}
			n.Reloading()
			got := recvNotify(t, c)
			lines := strings.Split(got, "\n")
			if lines[0] != "RELOADING=1" || len(lines) < 2 || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
				t.Errorf("reloading: %q", got)
			} else if us, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us == 0 {
				t.Errorf("MONOTONIC_USEC: %q", lines[1])
			}
			n.Watchdog()
			if got := recvNotify(t, c); got != "WATCHDOG=1" {
				t.Errorf("watchdog: %q", got)
			}
			n.Stopping("stopping")
			if got := recvNotify(t, c); got != "STOPPING=1\nSTATUS=stopping" {
				t.Errorf("stopping: %q", got)
			}
		})
	}
}

func TestNotifyWithoutSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := (&Notifier{}).Send("READY=1"); sent || err != nil {
		t.Errorf("sent=%v err=%v without NOTIFY_SOCKET", sent, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	if got := WatchdogInterval(); got != 3*time.Second {
		t.Errorf("own pid: %v", got)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if got := WatchdogInterval(); got != 0 {
		t.Errorf("another pid's watchdog: %v", got)
	}
	t.Setenv("WATCHDOG_USEC", "")
	if got := WatchdogInterval(); got != 0 {
		t.Errorf("unset: %v", got)
	}
}

// The keep-alives stop when the loop is stuck in a pass, so that systemd
// restarts a daemon that no longer repairs anything.
func TestWatchdogKeepAlives(t *testing.T) {
	c := listenNotify(t, filepath.Join(t.TempDir(), "notify.sock"))
	h := &health{timeout: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.watchdog(ctx, 100*time.Millisecond, &Notifier{})
	for range 2 {
		if got := recvNotify(t, c); got != "WATCHDOG=1" {
			t.Fatalf("keep-alive: %q", got)
		}
	}
	h.passStart.Store(time.Now().Add(-2 * time.Minute).UnixNano())
	// Drain a keep-alive that was in flight, then expect silence.
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	_, _ = c.Read(buf)
	c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("keep-alive %q while the loop is stuck in a pass", buf[:n])
	}
	h.passStart.Store(0)
	if got := recvNotify(t, c); got != "WATCHDOG=1" {
		t.Fatalf("keep-alive after recovery: %q", got)
	}
}
