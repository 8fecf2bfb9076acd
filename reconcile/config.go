package reconcile

import (
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/reconcile/internal/records"
)

// Config says which node a pass works on and where.
type Config struct {
	Node      string // node name in the file
	NodeNetns string // the node's host namespace: "" (current), a name, or a path
	StateDir  string // records of created namespaces and changed sysctls
	BPFFS     string // pin directory of this node
	Uplink    string // filled from the file
	// AttachMode says how datapath programs attach (--attach-mode):
	// datapath.ModeTCX, ModeTC or ModeAuto ("" is ModeAuto; see
	// datapath.Datapath.SetAttachMode).
	AttachMode string
	Drivers    *drivers.Registry
	// Shared, when made (NewShared) for the file planned, carries what
	// the desired states of that file's nodes share from one node's plan
	// to the next (plan --all-nodes); nil computes everything per plan.
	Shared *Shared
}

// DefaultStateDir holds per-node records (records.DefaultRoot).
const DefaultStateDir = records.DefaultRoot

// records is the node's records directory.
func (c *Config) records() records.Dir { return records.For(c.StateDir, c.Node) }
