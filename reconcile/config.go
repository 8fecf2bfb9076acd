package reconcile

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/internal/statedir"
)

// Config says which node a pass works on and where.
type Config struct {
	Node      string // node name in the file
	NodeNetns string // the node's host namespace: "" (current), a name, or a path
	StateDir  string // records of created namespaces and changed sysctls
	BPFFS     string // pin directory of this node
	Uplink    string // filled from the file
	// AttachTC attaches datapath programs as clsact filters rather than
	// tcx links (see datapath.Datapath.PreferTC).
	AttachTC bool
	Drivers  *drivers.Registry
}

// DefaultStateDir holds per-node records. It is on tmpfs, like
// /var/run/netns, so records and namespaces vanish together at reboot.
const DefaultStateDir = "/run/netreconcile"

// maxRecord bounds a record in the state directory: one holds an owner
// or a sysctl's value.
const maxRecord = 4096

func (c *Config) nodeStateDir() string {
	dir := c.StateDir
	if dir == "" {
		dir = DefaultStateDir
	}
	return filepath.Join(dir, c.Node)
}

// setPending records that link key (of owner) is about to be created.
func (c *Config) setPending(key, owner string) error {
	dir := filepath.Join(c.nodeStateDir(), "pending")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record pending link %s: %w", key, err)
	}
	if err := statedir.WriteFile(filepath.Join(dir, url.PathEscape(key)), []byte(owner+"\n"), 0o600); err != nil {
		return fmt.Errorf("record pending link %s: %w", key, err)
	}
	return nil
}

// clearPending removes the record once the link carries its mark.
func (c *Config) clearPending(key string) error {
	err := os.Remove(filepath.Join(c.nodeStateDir(), "pending", url.PathEscape(key)))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("clear pending link %s: %w", key, err)
	}
	return nil
}

// pendingLinks returns link keys recorded as being created, with owners.
func (c *Config) pendingLinks() (map[string]string, error) {
	dir := filepath.Join(c.nodeStateDir(), "pending")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read state %s: %w", dir, err)
	}
	out := map[string]string{}
	for _, e := range ents {
		key, err := url.PathUnescape(e.Name())
		if err != nil {
			continue
		}
		b, err := statedir.ReadFile(filepath.Join(dir, e.Name()), maxRecord)
		if err != nil {
			return nil, fmt.Errorf("read state %s: %w", e.Name(), err)
		}
		out[key] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// clearAllPending drops every pending record. After a verified pass every
// link of ours carries its mark, so the records are obsolete (one left
// by a crash names a link that never came to exist).
func (c *Config) clearAllPending() error {
	if err := os.RemoveAll(filepath.Join(c.nodeStateDir(), "pending")); err != nil {
		return fmt.Errorf("clear pending records: %w", err)
	}
	return nil
}
