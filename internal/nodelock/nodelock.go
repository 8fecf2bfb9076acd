// Package nodelock serialises the commands that change one node: apply,
// destroy and watch take an exclusive flock(2) on a file named after the
// node under the state directory, so that two of them never converge the
// same node at once (a one-shot apply racing a daemon would fight it:
// each would undo the other's changes as drift).
//
// flock is tied to the open file, so the lock is released when the holder
// exits, however it exits: a crashed or killed daemon never leaves a
// stale lock behind. The holder writes who it is into the file, for the
// message the next one prints while it waits.
package nodelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/statedir"
)

// ErrLocked is wrapped by Acquire's error when another process still held
// the lock when the wait ended.
var ErrLocked = errors.New("another netreconcile is working on the node")

// pollInterval is how often a waiting Acquire retries. flock has no
// timeout of its own, and a blocked flock(2) cannot be interrupted by a
// context; a tenth of a second is invisible next to a pass.
const pollInterval = 100 * time.Millisecond

// Path is the lock file of node under stateDir.
func Path(stateDir, node string) string {
	return filepath.Join(stateDir, node+".lock")
}

// Holder describes the process holding a lock, as it wrote itself into
// the lock file. Fields are zero when unknown.
type Holder struct {
	PID     int
	Command string
	Since   time.Time
}

func (h Holder) String() string {
	if h.PID == 0 {
		return "another process"
	}
	s := "pid " + strconv.Itoa(h.PID)
	if h.Command != "" {
		s += " (" + h.Command + ")"
	}
	if !h.Since.IsZero() {
		s += " since " + h.Since.Format(time.RFC3339)
	}
	return s
}

// Lock is a held lock. Release it (or exit) to let the next one in.
type Lock struct {
	f    *os.File
	path string
}

// Acquire takes the lock of node. When another process holds it, Acquire
// calls waiting once with the holder (to print a message), then retries
// until it gets the lock, timeout passes (0: do not wait; negative: wait
// for ever) or ctx ends. command is written into the file for others'
// messages, e.g. "netreconcile watch -f topo.yaml".
func Acquire(ctx context.Context, stateDir, node, command string, timeout time.Duration, waiting func(Holder)) (*Lock, error) {
	path := Path(stateDir, node)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("lock node %q: %w", node, err)
	}
	// Never through a symbolic link: the lock file is truncated and
	// written, and a link would make that another file.
	f, err := statedir.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock node %q: %w", node, err)
	}
	start := time.Now()
	told := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock node %q: flock %s: %w", node, path, err)
		}
		holder := ReadHolder(path)
		if timeout >= 0 && time.Since(start) >= timeout {
			f.Close()
			return nil, fmt.Errorf("node %q is locked by %s; gave up after %v (lock file %s, --lock-timeout): %w",
				node, holder, timeout, path, ErrLocked)
		}
		if !told && waiting != nil {
			waiting(holder)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock node %q held by %s: %w", node, holder, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
	info := fmt.Sprintf("pid=%d\ncommand=%s\nsince=%s\n", os.Getpid(), strings.ReplaceAll(command, "\n", " "),
		time.Now().UTC().Format(time.RFC3339))
	// Best effort: the lock itself is what matters, the text only helps
	// the next one's message.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(info), 0)
	}
	return &Lock{f: f, path: path}, nil
}

// Release lets the next process in. The file stays: removing it would
// let a waiter lock an unlinked inode while a newcomer locks a new one.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// maxHolder bounds what ReadHolder reads: a holder writes a few lines.
const maxHolder = 4096

// ReadHolder reads who holds (or last held) the lock at path.
func ReadHolder(path string) Holder {
	var h Holder
	b, err := statedir.ReadFile(path, maxHolder)
	if err != nil {
		return h
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "pid":
			h.PID, _ = strconv.Atoi(v)
		case "command":
			h.Command = v
		case "since":
			h.Since, _ = time.Parse(time.RFC3339, v)
		}
	}
	return h
}
