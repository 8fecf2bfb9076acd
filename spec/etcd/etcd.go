// Package etcd reads a topology from an etcd key prefix: -f
// etcd://HOST:PORT[,HOST:PORT...]/PREFIX, or etcds://... over TLS, every
// key under PREFIX one file of the set, named etcd://HOST:PORT/KEY (or
// etcds://) in messages.
//
// Design notes. A read is one range request over the prefix, so the set
// is what etcd held at one revision, never half of a change written in
// several keys by one transaction; keys come in byte order, the set's
// order. The watch daemon follows the prefix with etcd's watch from the
// revision after its read: no polling, and no change between the read and
// the watch is missed. The gRPC connection reconnects by itself with a
// backoff (1 s, growing to 10 s) and etcd's client resumes the watch from
// the last revision it delivered; a revision compacted meanwhile ends the
// watch, which is then taken up again from the compaction's revision
// after the whole prefix is read again. The connection's state (not a
// timer) tells when etcd cannot be reached and when it is back.
//
// etcds:// is TLS: the server verified against the system's roots or a
// given CA, a client certificate offered when given (TLSFiles). etcd's
// user and password authentication is not supported: client
// certificates are what production clusters (Kubernetes', Calico's) use.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/netreconcile/netreconcile/spec"
)

// Scheme is the -f URL scheme of an etcd prefix.
const Scheme = "etcd"

// Timeout bounds a read of the prefix: a node whose etcd does not answer
// learns it in this time (one-shot verbs fail; the daemon keeps its last
// good state).
const Timeout = 5 * time.Second

// ErrUnreachable marks a read or watch that etcd did not answer.
var ErrUnreachable = errors.New("etcd cannot be reached")

// Prefix is a Provider and Watcher of the keys under one prefix. Open
// makes it; it connects at its first read.
type Prefix struct {
	scheme string      // Scheme or SchemeTLS
	tls    *tls.Config // of SchemeTLS
	hosts  string      // as written: HOST:PORT[,HOST:PORT...]
	eps    []string    // the endpoints
	prefix string

	mu     sync.Mutex
	client *clientv3.Client
	rev    atomic.Int64 // revision of the last read
	// tlsFailed is the last TLS failure of a connection, nil once one
	// works: the cause of an etcds:// endpoint that does not answer.
	tlsFailed atomic.Pointer[tlsError]
}

// Open parses an etcd://HOST:PORT[,HOST:PORT...]/PREFIX argument (a
// spec.Opener). Nothing is dialled yet.
func Open(arg string) (spec.Provider, error) { return provider(parse(arg, Scheme, nil)) }

// OpenTLS parses an etcds://HOST:PORT[,HOST:PORT...]/PREFIX argument,
// whose connection is made with cfg (see TLSFiles.Config).
func OpenTLS(arg string, cfg *tls.Config) (spec.Provider, error) {
	return provider(parse(arg, SchemeTLS, cfg))
}

// provider makes a failed parse a nil Provider, not a nil *Prefix in one.
func provider(p *Prefix, err error) (spec.Provider, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

func parse(arg, scheme string, cfg *tls.Config) (*Prefix, error) {
	rest, ok := strings.CutPrefix(arg, scheme+"://")
	if !ok {
		return nil, fmt.Errorf("-f %s: not an %s:// URL", arg, scheme)
	}
	hosts, prefix, _ := strings.Cut(rest, "/")
	if prefix == "" {
		return nil, fmt.Errorf("-f %s: give a key prefix: %s://HOST:PORT/PREFIX", arg, scheme)
	}
	p := &Prefix{scheme: scheme, tls: cfg, hosts: hosts, prefix: prefix}
	for _, h := range strings.Split(hosts, ",") {
		if _, port, err := net.SplitHostPort(h); err != nil || port == "" {
			return nil, fmt.Errorf("-f %s: endpoint %q: want HOST:PORT", arg, h)
		}
		p.eps = append(p.eps, h)
	}
	return p, nil
}

// String is the argument, etcd://HOSTS/PREFIX (or etcds://).
func (p *Prefix) String() string { return p.name(p.prefix) }

// name is what messages call key.
func (p *Prefix) name(key string) string { return p.scheme + "://" + p.hosts + "/" + key }

// Revision is the revision of the last read (0 before one).
func (p *Prefix) Revision() int64 { return p.rev.Load() }

// Sources reads every key under the prefix at one revision, in key
// order, each value and their sum within max bytes.
func (p *Prefix) Sources(max int64) ([]spec.Source, error) {
	c, err := p.connect(max)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	resp, err := c.Get(ctx, p.prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	switch {
	case status.Code(err) == codes.ResourceExhausted:
		return nil, spec.TooLarge(p.String(), fmt.Sprintf("the keys and values under the prefix are over %d bytes, more than twice the %d bytes limit of the whole set", recvLimit(max), max))
	case err != nil:
		return nil, p.unreachable("read", err)
	case len(resp.Kvs) == 0:
		return nil, noKeys{p.String()}
	}
	out := make([]spec.Source, 0, len(resp.Kvs))
	var total int64
	for _, kv := range resp.Kvs {
		name := p.name(string(kv.Key))
		n := int64(len(kv.Value))
		if n > max {
			return nil, spec.FileTooLarge(name, n, max)
		}
		if total += n; total > max {
			return nil, spec.SetTooLarge(name, total, max)
		}
		out = append(out, spec.Source{Name: name, Data: kv.Value})
	}
	p.rev.Store(resp.Header.Revision)
	return out, nil
}

// unreachable wraps an error of op that etcd did not answer in time with
// ErrUnreachable, naming the endpoints.
func (p *Prefix) unreachable(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded ||
		status.Code(err) == codes.Unavailable {
		if f := p.tlsFailed.Load(); f != nil {
			err = f
		}
		return fmt.Errorf("%s topology %s: %w at %s (no answer within %s): %w", op, p, ErrUnreachable, p.hosts, Timeout, err)
	}
	return fmt.Errorf("%s topology %s: %w", op, p, err)
}

// noKeys is the error of a prefix with no key under it; a daemon takes it
// as a missing file (fs.ErrNotExist).
type noKeys struct{ name string }

func (e noKeys) Error() string { return "load topology: " + e.name + ": no key under the prefix" }
func (e noKeys) Unwrap() error { return fs.ErrNotExist }

// connect makes the client at the first call. Its receive limit
// (recvLimit) bounds the memory a read can take before sizes are checked.
func (p *Prefix) connect(max int64) (*clientv3.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	opts := []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 10 * time.Second},
		MinConnectTimeout: Timeout,
	})}
	if p.tls != nil {
		// These replace the credentials the client makes of TLS (dial
		// options given later win): the same, keeping their failures.
		opts = append(opts, grpc.WithTransportCredentials(tlsCreds{credentials.NewTLS(p.tls), &p.tlsFailed}))
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:          p.eps,
		TLS:                p.tls,
		DialTimeout:        Timeout,
		MaxCallRecvMsgSize: recvLimit(max),
		// The library's errors are returned; its own logs would be noise.
		Logger:      zap.NewNop(),
		DialOptions: opts,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %s: %w", p.hosts, err)
	}
	p.client = c
	return c, nil
}

// recvLimit is the largest response read for a limit of max bytes of
// values: keys and framing come on top.
func recvLimit(max int64) int { return int(min(2*max+1<<20, math.MaxInt32)) }

// Close closes the connection.
func (p *Prefix) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		return nil
	}
	err := p.client.Close()
	p.client = nil
	return err
}

// Watch follows the prefix from the revision after the last read until
// ctx ends (see spec.Watcher): changed(nil) after each change under the
// prefix, changed(err) when etcd cannot be reached or the watch fails,
// changed(nil) again once it is back.
func (p *Prefix) Watch(ctx context.Context, changed func(error)) error {
	c, err := p.connect(spec.DefaultMaxFileSize)
	if err != nil {
		return err
	}
	go p.followConn(ctx, c.ActiveConnection(), changed)
	rev, wait := p.rev.Load(), time.Duration(0)
	if rev > 0 {
		rev++ // the changes after the read; 0 (no read yet): from now
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		next, err := p.watch(ctx, c, rev, wait > 0, changed)
		if ctx.Err() != nil {
			return nil
		}
		rev = next
		if err != nil {
			changed(fmt.Errorf("watch topology %s from revision %d: %w", p, rev, err))
			wait = min(max(2*wait, time.Second), 30*time.Second)
		} else {
			wait = 0
		}
	}
}

// watch runs one etcd watch of the prefix from rev until it ends, and
// returns the revision to take it up from. A compacted rev means changes
// were lost: the whole prefix must be read again (changed), and the watch
// goes on from the oldest revision etcd keeps. After a failure (retry),
// the watch's creation is reported as the recovery.
func (p *Prefix) watch(ctx context.Context, c *clientv3.Client, rev int64, retry bool, changed func(error)) (int64, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	ch := c.Watch(wctx, p.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithCreatedNotify())
	for resp := range ch {
		switch {
		case resp.CompactRevision != 0:
			changed(nil)
			return resp.CompactRevision, nil
		case resp.Err() != nil:
			return rev, resp.Err()
		case resp.Created && retry:
			// What changed meanwhile comes as events, but a report of
			// the failure must be followed by one of the recovery.
			changed(nil)
		case len(resp.Events) > 0:
			rev = resp.Events[len(resp.Events)-1].Kv.ModRevision + 1
			changed(nil)
		}
	}
	return rev, errors.New("watch closed")
}

// followConn reports the connection's failures and recoveries as they
// happen: gRPC tells each change of its state.
func (p *Prefix) followConn(ctx context.Context, conn *grpc.ClientConn, changed func(error)) {
	down := false
	for st := conn.GetState(); ; st = conn.GetState() {
		switch {
		case st == connectivity.TransientFailure && !down:
			down = true
			err := fmt.Errorf("watch topology %s: %w at %s; retrying", p, ErrUnreachable, p.hosts)
			if f := p.tlsFailed.Load(); f != nil {
				err = fmt.Errorf("%w: %w", err, f)
			}
			changed(err)
		case st == connectivity.Ready && down:
			down = false
			changed(nil)
		}
		if !conn.WaitForStateChange(ctx, st) {
			return
		}
	}
}
