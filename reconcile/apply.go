package reconcile

import (
	"context"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/reconcile/apply"
)

// Apply executes p on the node of cfg (apply.Apply): the number of
// changes applied, and the first kernel refusal, naming the object.
func Apply(ctx context.Context, cfg *Config, p *Plan, log logr.Logger) (int, error) {
	return apply.Apply(ctx, cfg.applyConfig(), p, log)
}

func (c *Config) applyConfig() *apply.Config {
	return &apply.Config{Node: c.Node, NodeNetns: c.NodeNetns, BPFFS: c.BPFFS, AttachMode: c.AttachMode, Records: c.records()}
}
