package records

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/statedir"
)

// The services record (<state-dir>/<node>/services) names the service of
// the file that each service entry of the datapath was written for, a
// line "<ip>:<port>/<protocol> service/<namespace>/<name>" per entry, in
// key order. The maps hold no name: without the record, a service that
// has left the file could be shown by its address alone. It only names
// entries, never decides a change, so a line that is not of that form is
// left out with a warning.

// maxServicesRecord bounds the services record: some 200,000 entries.
const maxServicesRecord = 16 << 20

func (d Dir) servicesPath() string { return d.sub("services") }

// ServiceOwners returns the services record: the owner of each service
// entry by its key, and warnings for lines ignored. The map is shared
// with later calls: do not change it.
func (d Dir) ServiceOwners() (map[string]string, []string, error) {
	b, err := statedir.ReadFile(d.servicesPath(), maxServicesRecord)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil, nil
	}
	if errors.Is(err, statedir.ErrTooLarge) || errors.Is(err, unix.ELOOP) {
		// not one netreconcile wrote: the entries go unnamed
		return map[string]string{}, []string{fmt.Sprintf("ignored state record %s: %v", d.servicesPath(), err)}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read state %s: %w", d.servicesPath(), err)
	}
	if owners, ok := lastRecord.get(d.servicesPath(), b); ok {
		return owners, nil, nil
	}
	out := map[string]string{}
	var warns []string
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		key, owner, err := parseServiceLine(line)
		if err != nil {
			warns = append(warns, fmt.Sprintf("ignored line %d of state record %s: %v", i+1, d.servicesPath(), err))
			continue
		}
		out[key] = owner
	}
	if len(warns) == 0 {
		lastRecord.put(d.servicesPath(), b, out)
	}
	return out, warns, nil
}

// lastRecord is the services record this process last read or wrote,
// with its owners: a daemon's passes read a cluster's record (10,000
// services) twice and write it twice, and parsing or writing it again
// cost more than the rest of reading the datapath. The text is still
// read each time, and compared: it is the record.
var lastRecord recordMemo

type recordMemo struct {
	mu     sync.Mutex
	path   string
	text   []byte
	owners map[string]string
}

// get returns the owners of the record at path when it holds text.
func (m *recordMemo) get(path string, text []byte) (map[string]string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.path != path || !bytes.Equal(m.text, text) {
		return nil, false
	}
	return m.owners, true
}

// written reports whether the record at path holds owners as written or
// read last (and still there).
func (m *recordMemo) written(path string, owners map[string]string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.path != path || !maps.Equal(m.owners, owners) {
		return false
	}
	b, err := statedir.ReadFile(path, maxServicesRecord)
	return err == nil && bytes.Equal(b, m.text)
}

func (m *recordMemo) put(path string, text []byte, owners map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.path, m.text, m.owners = path, text, owners
}

// parseServiceLine reads one line of the services record.
func parseServiceLine(line string) (key, owner string, err error) {
	key, owner, ok := strings.Cut(line, " ")
	addr, proto, ok2 := strings.Cut(key, "/")
	if !ok || !ok2 {
		return "", "", fmt.Errorf("%q is not \"<ip>:<port>/<protocol> <owner>\"", line)
	}
	if ap, err := netip.ParseAddrPort(addr); err != nil || ap.String() != addr || !slices.Contains([]string{"TCP", "UDP", "SCTP"}, proto) {
		return "", "", fmt.Errorf("%q is not a service entry's key", key)
	}
	parts := strings.Split(owner, "/")
	if len(parts) != 3 || parts[0] != "service" || parts[1] == "" || parts[2] == "" ||
		strings.IndexFunc(owner, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return "", "", fmt.Errorf("%q is not a service's owner", owner)
	}
	return key, owner, nil
}

// RecordServiceOwners makes the services record owners (service entry
// key -> owner), unless it holds them already; none removes it. The
// record is replaced whole (written aside, then renamed over), so a crash
// leaves the old one or the new one.
func (d Dir) RecordServiceOwners(owners map[string]string) error {
	if len(owners) > 0 && lastRecord.written(d.servicesPath(), owners) {
		return nil
	}
	var b bytes.Buffer
	for _, key := range slices.Sorted(maps.Keys(owners)) {
		b.WriteString(key + " " + owners[key] + "\n")
	}
	path := d.servicesPath()
	// Whatever is there otherwise (another record, one too large, a
	// symbolic link) is replaced, never followed.
	old, err := statedir.ReadFile(path, maxServicesRecord)
	if err == nil && bytes.Equal(old, b.Bytes()) {
		lastRecord.put(path, old, maps.Clone(owners))
		return nil
	}
	if errors.Is(err, os.ErrNotExist) && len(owners) == 0 {
		return nil
	}
	if len(owners) == 0 {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove state %s: %w", path, err)
		}
		return nil
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("record service owners: %w", err)
	}
	if err := statedir.WriteFile(path+".new", b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("record service owners: %w", err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		return fmt.Errorf("record service owners: %w", err)
	}
	lastRecord.put(path, b.Bytes(), maps.Clone(owners))
	return nil
}
