// Package daemon is `netreconcile watch`: a long-running loop that keeps
// one node converged to a topology file.
//
// # Design notes
//
// The engine is level-based (every pass observes, diffs and applies), so
// the daemon never acts on what an event says: an event only says "look
// again soon". A pass is the same Engine.Apply as `netreconcile apply`.
//
// Reasons for a pass, each with its own timing:
//
//   - start: at once. The first pass adopts what is there: objects that
//     match are left alone (same ifindex), so a restart changes nothing.
//   - file: fsnotify on the file's directory, not the file, so that an
//     editor's write-and-rename and a ConfigMap's `..data` symlink swap are
//     both seen (a watch on the file's inode would follow the old inode).
//     Sliding debounce (FileDebounce of quiet, at most MaxDelay after the
//     first event): a file that flaps converges to its last version. The
//     content is hashed: an event that changed nothing costs a read. An
//     invalid or missing file is logged and the last good model is kept.
//   - kernel: one netlink socket per watched namespace (the node's and
//     each pod namespace of the file), bound to the link, IPv4 address,
//     IPv4 route and neighbour groups and read through the Go poller, so
//     a thousand namespaces cost a thousand descriptors and parked
//     goroutines, not threads. Events are filtered at the socket so that
//     only possible drift wakes the loop: links when created, deleted or
//     changed in what we set (up, MTU, name, master, alias, MAC; a link
//     cache primed by a dump on the same socket, so carrier changes, which
//     a new veth reports up to a second later, are not news); routes with
//     our protocol in the main table; neighbours when permanent or at an
//     IP we own (ARP churn under traffic is not news). Fixed debounce
//     (KernelDebounce from the first event) gathers a burst (deleting a
//     veth makes link, address and route events in two namespaces).
//   - netns: fsnotify on the directories holding the watched namespaces'
//     names (/var/run/netns). A name that goes away is let go at once (see
//     below); a name that appears and is not the namespace subscribed to
//     (a runtime created a pod's namespace) causes a pass.
//   - reload (SIGHUP): at once, even if the file did not change.
//   - apply: `netreconcile apply` of the file the daemon follows, through
//     the control socket (control.go), since the daemon holds the node
//     lock: at once, the file read even if no event came yet, and answered
//     with the outcome once the pass ends (or with the file's errors, when
//     it is invalid: the last good model is not applied in its name).
//   - resync: Resync after the last pass, a full pass whatever happened.
//   - retry: a failed pass is retried with exponential backoff; kernel
//     events and resyncs wait for the backoff (a pass that fails half-way
//     causes kernel events of its own), file changes and SIGHUP do not.
//
// Events caused by our own applies are not matched to the changes that
// caused them: they arrive during or just after the pass and cause one
// more pass, whose plan is empty. That costs one observation (milliseconds
// for tens of pods, about a second for a thousand) and is always right,
// where matching events to our own changes would miss a concurrent change
// made by someone else in the same instant. What is filtered is what can
// never be drift (above), and namespace names that still name the
// namespace already subscribed to (our own pass created them; the event
// was queued behind the pass).
//
// A netlink socket holds a reference on its namespace. Subscriptions of
// namespaces that left the file, or whose name is gone or names another
// namespace, are closed before each pass, and at once when fsnotify sees
// the name go (under /var/run/netns): otherwise a namespace deleted by
// hand would live on, veths and all, held by the daemon.
//
// Stopping (SIGTERM, SIGINT) lets a pass in flight finish (StopGrace) and
// then returns, leaving every kernel object and pin as it is.
package daemon
