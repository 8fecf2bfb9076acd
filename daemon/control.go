package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/spec"
)

// The control socket lets `netreconcile apply` reach the daemon that
// holds its node, instead of waiting for a lock the daemon never
// releases: apply names its file, and when it is the file the daemon
// follows, the daemon reads it and runs a pass at once (no quiet time)
// and answers with the outcome. The socket is the node lock's sibling
// (<state-dir>/<node>.sock), readable by root alone; a request can only
// make the daemon converge to its own file.

// ControlRequest is what apply sends, as one JSON line; or, from
// status, a question about the daemon's state, answered at once.
type ControlRequest struct {
	File   string   `json:"file,omitempty"`  // the path apply was given, absolute (the first of Files)
	Files  []string `json:"files,omitempty"` // every -f apply was given, absolute, in order
	Status bool     `json:"status,omitempty"`
}

// ControlReply is the daemon's answer to a request, as one JSON line,
// once a pass that started after the request ended.
type ControlReply struct {
	PID     int    `json:"pid"`
	File    string `json:"file"` // the files the daemon follows (comma-separated)
	Applied int    `json:"applied"`
	Add     int    `json:"add"`
	Change  int    `json:"change"`
	Destroy int    `json:"destroy"`
	Error   string `json:"error,omitempty"`
	// Status answers a status request.
	Status *Status `json:"status,omitempty"`
}

// MaxControlRequest bounds a request: it names a file. A longer one is
// refused without being read further, so that no client can make the
// daemon's memory grow.
const MaxControlRequest = 64 << 10

// controlIOTimeout bounds reading a request and writing its reply: a
// client that sends nothing, or does not read, holds no goroutine long.
const controlIOTimeout = 5 * time.Second

// ControlTimeout bounds how long Ask waits for a pass: a pass that
// builds a thousand pods takes about half a minute.
const ControlTimeout = 10 * time.Minute

// ctlReq is a request on its way to the loop.
type ctlReq struct {
	files []string
	reply chan ControlReply // buffered: the loop never blocks on it
}

// listenControl replaces a socket left by a daemon that died (the caller
// holds the node lock, so no live daemon owns it) and listens on it.
func listenControl(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// chmod follows symbolic links: check that path is still our socket.
	if st, err := os.Lstat(path); err != nil || st.Mode().Type() != fs.ModeSocket {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: replaced while it was made", path)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return ln, nil
}

// control holds the requests of the control socket: it hands each to
// the loop, which queues it for the next pass, and answers it with that
// pass's outcome. reqs is shared with the connections' goroutines; the
// waiters are the loop's.
type control struct {
	files   []string    // the set the daemon follows (-f, in order)
	file    string      // the same, for messages
	reqs    chan ctlReq // requests from the control socket, to the loop
	waiters []chan ControlReply
	board   *statusBoard // status requests are answered from it
}

func newControl(files []string, board *statusBoard) *control {
	return &control{files: files, file: strings.Join(files, ", "), reqs: make(chan ctlReq), board: board}
}

// serve hands each connection's request to the loop and writes back its
// reply, until ln is closed.
func (c *control) serve(ctx context.Context, ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go c.serveConn(ctx, conn)
	}
}

// serveConn reads one request from conn, within MaxControlRequest bytes
// and controlIOTimeout, hands it to the loop and writes back its reply.
func (c *control) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(controlIOTimeout))
	lr := &io.LimitedReader{R: conn, N: MaxControlRequest + 1}
	var req ControlRequest
	if err := json.NewDecoder(lr).Decode(&req); err != nil {
		msg := "bad request: " + err.Error()
		if lr.N <= 0 {
			msg = fmt.Sprintf("request larger than %d bytes: refused", MaxControlRequest)
		}
		_ = json.NewEncoder(conn).Encode(ControlReply{PID: os.Getpid(), File: c.file, Error: msg})
		return
	}
	if req.Status {
		st := c.board.load()
		st.PID, st.File = os.Getpid(), c.file
		_ = json.NewEncoder(conn).Encode(ControlReply{PID: st.PID, File: c.file, Status: &st})
		return
	}
	_ = conn.SetDeadline(time.Time{}) // the pass takes what it takes
	files := req.Files
	if len(files) == 0 && req.File != "" {
		files = []string{req.File}
	}
	r := ctlReq{files: files, reply: make(chan ControlReply, 1)}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return
	}
	select {
	case rep := <-r.reply:
		_ = conn.SetWriteDeadline(time.Now().Add(controlIOTimeout))
		_ = json.NewEncoder(conn).Encode(rep)
	case <-ctx.Done():
	}
}

// accept queues r for the next pass, and reports whether it did; a file
// that is not the one the daemon follows is refused at once.
func (c *control) accept(r ctlReq) bool {
	if err := sameFiles(r.files, c.files); err != nil {
		r.reply <- ControlReply{PID: os.Getpid(), File: c.file, Error: err.Error()}
		return false
	}
	c.waiters = append(c.waiters, r.reply)
	return true
}

// take hands the queued requests to the pass that answers them.
func (c *control) take() []chan ControlReply {
	w := c.waiters
	c.waiters = nil
	return w
}

// sameFiles reports, as an error, why files (apply's -f, in order) are
// not the set followed.
func sameFiles(files, followed []string) error {
	same := len(files) == len(followed)
	for i := 0; same && i < len(files); i++ {
		if _, url := spec.URLScheme(files[i]); url {
			same = files[i] == followed[i] // a store's prefix: the same URL
			continue
		}
		a, err := os.Stat(files[i])
		if err != nil {
			return err
		}
		b, err := os.Stat(followed[i])
		same = err == nil && os.SameFile(a, b)
	}
	if same {
		return nil
	}
	abs := make([]string, len(followed))
	for i, f := range followed {
		abs[i] = absArg(f)
	}
	return fmt.Errorf("the watch daemon (pid %d) follows %s, not %s: edit that, or stop the daemon to apply another",
		os.Getpid(), strings.Join(abs, ", "), strings.Join(files, ", "))
}

// answer replies to the requests a pass served.
func (c *control) answer(waiters []chan ControlReply, rep ControlReply) {
	rep.PID, rep.File = os.Getpid(), c.file
	for _, w := range waiters {
		w <- rep
	}
}

// dialControl connects to the socket at path, never through a symbolic
// link: a link planted there would hand apply's request to another
// socket. The socket is named through a descriptor of it (O_PATH), whose
// /proc/self/fd entry connect(2) follows to that very inode.
func dialControl(ctx context.Context, path string) (net.Conn, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, fmt.Errorf("%s is not a socket (a symbolic link or a file planted there?)", path)
	}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return dialer.DialContext(dctx, "unix", fmt.Sprintf("/proc/self/fd/%d", fd))
}

// Ask sends files (apply's -f, in order) to the daemon listening on the
// control socket path and waits for its reply. ok is false when no daemon
// listens there. Standard input ("-") cannot be handed over: with a
// daemon there, it is an error.
func Ask(ctx context.Context, path string, files []string) (rep ControlReply, ok bool, err error) {
	conn, err := dialControl(ctx, path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return rep, false, nil // no daemon, or one that died
	}
	if err != nil {
		return rep, false, fmt.Errorf("watch daemon's control socket %s: %w", path, err)
	}
	defer conn.Close() // a daemon that got no request drops the connection
	abs := make([]string, len(files))
	for i, file := range files {
		if file == "-" {
			return rep, true, errors.New("a watch daemon holds the node and follows its own file: standard input cannot be handed to it; edit that file, or stop the daemon")
		}
		abs[i] = absArg(file)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(ControlTimeout))
	if err := json.NewEncoder(conn).Encode(ControlRequest{File: abs[0], Files: abs}); err != nil {
		return rep, true, fmt.Errorf("watch daemon's control socket %s: %w", path, err)
	}
	if err := json.NewDecoder(io.LimitReader(conn, MaxControlRequest)).Decode(&rep); err != nil {
		if ctx.Err() != nil {
			return rep, true, ctx.Err()
		}
		return rep, true, fmt.Errorf("no answer from the watch daemon (control socket %s): %w", path, err)
	}
	return rep, true, nil
}

// AskStatus asks the daemon listening on the control socket path for its
// Status; ok is false when no daemon listens there.
func AskStatus(ctx context.Context, path string) (st Status, ok bool, err error) {
	conn, err := dialControl(ctx, path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("watch daemon's control socket %s: %w", path, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(controlIOTimeout))
	if err := json.NewEncoder(conn).Encode(ControlRequest{Status: true}); err != nil {
		return st, true, fmt.Errorf("watch daemon's control socket %s: %w", path, err)
	}
	var rep ControlReply
	if err := json.NewDecoder(io.LimitReader(conn, MaxControlRequest)).Decode(&rep); err != nil {
		return st, true, fmt.Errorf("no answer from the watch daemon (control socket %s): %w", path, err)
	}
	if rep.Status == nil {
		return st, true, fmt.Errorf("the watch daemon (pid %d) does not answer status requests: %s", rep.PID, rep.Error)
	}
	return *rep.Status, true, nil
}

// absArg is an -f argument as the daemon compares it: a path made
// absolute, a store's URL as it is.
func absArg(arg string) string {
	if _, url := spec.URLScheme(arg); url {
		return arg
	}
	if abs, err := filepath.Abs(arg); err == nil {
		return abs
	}
	return arg
}
