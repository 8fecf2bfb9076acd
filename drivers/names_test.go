package drivers_test

import (
	"testing"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/ipvlan"
	"github.com/netreconcile/netreconcile/drivers/macvlan"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/routing"
	"github.com/netreconcile/netreconcile/spec"
)

// TestSpecKnowsOurNames holds what package spec refuses (it cannot import
// the drivers) in step with the names and addresses the drivers and the
// datapath use: an uplink named like a device netreconcile creates, and a
// pod address the datapath or a driver claims.
func TestSpecKnowsOurNames(t *testing.T) {
	for _, name := range []string{bridge.Name, macvlan.Shim, ipvlan.Shim, routing.Device,
		drivers.HostIfName("node-a", "x/a"), drivers.HostIfName("n", "default/p")} {
		if spec.OwnLinkName(name) == "" {
			t.Errorf("spec.OwnLinkName(%q) = \"\": an uplink of that name would be accepted", name)
		}
	}
	for _, name := range []string{"eth0", "ens3", "nrbr1", "nr0a1b2c3", "nr0A1B2C3D"} {
		if what := spec.OwnLinkName(name); what != "" {
			t.Errorf("spec.OwnLinkName(%q) = %q, want none", name, what)
		}
	}
	if spec.HairpinIP != datapath.DefaultHairpinIP {
		t.Errorf("spec.HairpinIP %s, datapath uses %s", spec.HairpinIP, datapath.DefaultHairpinIP)
	}
	if spec.VethGateway != veth.Gateway {
		t.Errorf("spec.VethGateway %s, the veth driver uses %s", spec.VethGateway, veth.Gateway)
	}
}
