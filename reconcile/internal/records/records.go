// Package records keeps what netreconcile made on a node under its state
// directory: the namespaces it created, the node sysctls it changed (with
// their original values), and the links being created when a pass
// stopped.
package records

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/statedir"
)

// Records under <state-dir>/<node> say what netreconcile made: the
// namespaces it created (netns/<name>, holding the owner) and the node
// sysctls it changed (sysctl/<key with dots>, holding the original
// value). They decide deletions and writes, so a record is used only when
// it could have been written by netreconcile; any other is ignored, with
// a warning in the log, and left in place:
//   - a netns record must name a plain namespace name under /run/netns
//     (printable ASCII, no slash, not "." or ".."); and the namespace,
//     when it exists, must have a pod owner ("pod/NS/NAME") and carry
//     netreconcile's mark (its loopback's alias, set when it is created;
//     or, from earlier releases, a link of ours inside). A forged record
//     naming someone else's namespace never plans its deletion.
//   - a sysctl record must name a key of the node's network namespace
//     (under net/, as every sysctl netreconcile changes; kernel/, vm/ or
//     fs/ keys are the host's, never ours) and hold one short printable
//     line.
//   - a record that is a symbolic link, or larger than maxRecord, is not
//     read at all.

// DefaultRoot holds per-node records. It is on tmpfs, like /var/run/netns,
// so records and namespaces vanish together at reboot.
const DefaultRoot = "/run/netreconcile"

// maxRecord bounds a record: one holds an owner or a sysctl's value.
const maxRecord = 4096

// Dir is one node's records: <state-dir>/<node>.
type Dir string

// For is the records directory of node under stateDir ("": DefaultRoot).
func For(stateDir, node string) Dir {
	if stateDir == "" {
		stateDir = DefaultRoot
	}
	return Dir(filepath.Join(stateDir, node))
}

func (d Dir) sub(name string) string { return filepath.Join(string(d), name) }

// OwnedNetns lists the namespaces recorded as created by netreconcile,
// with the owner each record names, and warnings for records ignored.
func (d Dir) OwnedNetns() (map[string]string, []string, error) {
	return readRecords(d.sub("netns"), func(name string) string { return name }, checkNetnsRecord)
}

// RecordNetns records that namespace name (of owner) is about to be
// created: a crash in between leaves a record of an absent namespace
// rather than an unrecorded namespace.
func (d Dir) RecordNetns(name, owner string) error {
	if err := os.MkdirAll(d.sub("netns"), 0o700); err != nil {
		return fmt.Errorf("record netns %s: %w", name, err)
	}
	if err := statedir.WriteFile(filepath.Join(d.sub("netns"), name), []byte(owner+"\n"), 0o600); err != nil {
		return fmt.Errorf("record netns %s: %w", name, err)
	}
	return nil
}

// ForgetNetns removes the record of namespace name.
func (d Dir) ForgetNetns(name string) error {
	if err := os.Remove(filepath.Join(d.sub("netns"), name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove the record of netns %s: %w", name, err)
	}
	return nil
}

// RecordedSysctls returns sysctls changed by netreconcile and their
// original values, and warnings for records ignored.
func (d Dir) RecordedSysctls() (map[string]string, []string, error) {
	return readRecords(d.sub("sysctl"), func(name string) string {
		return strings.ReplaceAll(name, ".", "/")
	}, checkSysctlRecord)
}

// checkNetnsRecord says why a netns record cannot be netreconcile's by
// its name. Its owner is checked only when the namespace exists
// (PodOwner): a record of an absent namespace, even one torn by a crash
// while it was written, only ever gets itself removed.
func checkNetnsRecord(name, _ string) error {
	if name == "." || name == ".." || len(name) > 255 || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return fmt.Errorf("%q is not a namespace name netreconcile gives", name)
	}
	return nil
}

// PodOwner reports whether owner, from a netns record, names a pod.
func PodOwner(owner string) bool {
	parts := strings.Split(owner, "/")
	return len(parts) == 3 && parts[0] == "pod" && parts[1] != "" && parts[2] != ""
}

// sysctlKey is a key of the network namespace's own sysctls.
var sysctlKey = regexp.MustCompile(`^net(/[A-Za-z0-9_-]+)+$`)

// checkSysctlRecord says why a sysctl record cannot be netreconcile's.
func checkSysctlRecord(key, value string) error {
	if !sysctlKey.MatchString(key) {
		return fmt.Errorf("%s is not a sysctl of the node's network namespace", key)
	}
	if len(value) > 256 || strings.IndexFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r > '~' }) >= 0 {
		return fmt.Errorf("%s: the recorded value %q is not a sysctl value", key, value)
	}
	return nil
}

// readRecords returns the trimmed contents of the files in dir (none when
// it is missing), by key(file name), leaving out, with a warning each,
// the records check refuses and those that cannot be read (a symbolic
// link, a file too large). A node holds a record per pod: they are read
// with plain syscalls into one buffer, which takes half the time of
// os.ReadFile (no descriptor for the runtime poller, no stat).
func readRecords(dir string, key func(string) string, check func(key, value string) error) (map[string]string, []string, error) {
	out := map[string]string{}
	d, err := statedir.OpenFile(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if os.IsNotExist(err) {
		return out, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read state %s: %w", dir, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, nil, fmt.Errorf("read state %s: %w", dir, err)
	}
	var warns []string
	dfd, buf := int(d.Fd()), make([]byte, maxRecord+1)
	for _, name := range names {
		path := filepath.Join(dir, name)
		b, err := readAt(dfd, name, buf)
		if err == nil {
			err = check(key(name), strings.TrimSpace(string(b)))
		}
		if err != nil {
			warns = append(warns, fmt.Sprintf("ignored state record %s: %v", path, err))
			continue
		}
		out[key(name)] = strings.TrimSpace(string(b))
	}
	return out, warns, nil
}

// readAt reads file name under directory dfd into buf (at least
// maxRecord+1 long), refusing a file of more than maxRecord bytes.
func readAt(dfd int, name string, buf []byte) ([]byte, error) {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	if n > maxRecord {
		return nil, fmt.Errorf("more than %d bytes: %w", maxRecord, statedir.ErrTooLarge)
	}
	return buf[:n], nil
}
