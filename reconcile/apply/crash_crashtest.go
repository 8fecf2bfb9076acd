//go:build crashtest

package apply

import (
	"os"
	"strconv"
	"syscall"
)

// crashAfter is NETRECONCILE_CRASH_AFTER, read only by a build for the
// crash tests (go build -tags crashtest; the e2e harness builds so).
var crashAfter, _ = strconv.ParseInt(os.Getenv("NETRECONCILE_CRASH_AFTER"), 10, 64)

// afterChange is the crash tests' fault injection: the process dies as
// abruptly as a power cut would, right after the crashAfter-th change.
func afterChange(n int64) {
	if n == crashAfter {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}
