package reconcile

import (
	"path/filepath"

	"github.com/netreconcile/netreconcile/drivers"
)

// Config says which node a pass works on and where.
type Config struct {
	Node      string // node name in the file
	NodeNetns string // the node's host namespace: "" (current), a name, or a path
	StateDir  string // records of created namespaces and changed sysctls
	BPFFS     string // pin directory of this node
	Uplink    string // filled from the file
	Drivers   *drivers.Registry
}

// DefaultStateDir holds per-node records. It is on tmpfs, like
// /var/run/netns, so records and namespaces vanish together at reboot.
const DefaultStateDir = "/run/netreconcile"

func (c *Config) nodeStateDir() string {
	dir := c.StateDir
	if dir == "" {
		dir = DefaultStateDir
	}
	return filepath.Join(dir, c.Node)
}
