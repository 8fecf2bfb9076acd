package daemon

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier speaks systemd's notify protocol (sd_notify(3)): datagrams of
// NAME=VALUE lines sent to the unix socket named by NOTIFY_SOCKET (a path,
// or an abstract name written with a leading '@'). Without NOTIFY_SOCKET
// every call is a no-op, so the daemon runs the same way from a terminal.
//
// The protocol is a few lines, written here rather than imported so that
// every send has a deadline: a datagram socket whose reader stalls blocks
// the sender once its queue is full, and the loop must never wait on the
// service manager.
type Notifier struct {
	mu         sync.Mutex
	lastStatus string
}

// notifyTimeout bounds one send.
const notifyTimeout = time.Second

// Send sends one message made of the given NAME=VALUE lines. It reports
// whether a service manager is listening.
func (n *Notifier) Send(lines ...string) (bool, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(notifyTimeout))
	if _, err := c.Write([]byte(strings.Join(lines, "\n"))); err != nil {
		return false, err
	}
	return true, nil
}

// Ready says that start-up (or a reload) is complete, with a status line.
func (n *Notifier) Ready(status string) {
	n.mu.Lock()
	n.lastStatus = status
	n.mu.Unlock()
	_, _ = n.Send("READY=1", "STATUS="+status)
}

// Reloading says that a reload began. Since systemd 253 a RELOADING=1
// must carry the CLOCK_MONOTONIC time in microseconds; older managers
// ignore the field.
func (n *Notifier) Reloading() {
	_, _ = n.Send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10),
		"STATUS=reloading the topology file")
}

// Stopping says that shutdown began.
func (n *Notifier) Stopping(status string) {
	_, _ = n.Send("STOPPING=1", "STATUS="+status)
}

// Status updates the one-line status `systemctl status` shows, when it
// changed.
func (n *Notifier) Status(status string) {
	n.mu.Lock()
	same := status == n.lastStatus
	n.lastStatus = status
	n.mu.Unlock()
	if !same {
		_, _ = n.Send("STATUS=" + status)
	}
}

// Watchdog is a keep-alive.
func (n *Notifier) Watchdog() {
	_, _ = n.Send("WATCHDOG=1")
}

// WatchdogInterval is the keep-alive period systemd asked for with
// WATCHDOG_USEC, or 0. When WATCHDOG_PID is set, it must be this
// process (a child started by the service must not ping for it).
func WatchdogInterval() time.Duration {
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		if pid, err := strconv.Atoi(p); err != nil || pid != os.Getpid() {
			return 0
		}
	}
	return time.Duration(us) * time.Microsecond
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
