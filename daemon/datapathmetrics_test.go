package daemon

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

// TestDatapathMetricsWithoutDatapath: before the first pass makes a
// datapath (or on a node without one) the scrape succeeds and simply has
// no datapath series.
func TestDatapathMetricsWithoutDatapath(t *testing.T) {
	m := NewMetrics()
	for _, pinDir := range []string{"", filepath.Join(t.TempDir(), "none")} {
		m.datapath.set(pinDir, nil, logr.Discard())
		fams, err := m.Registry.Gather()
		if err != nil {
			t.Fatalf("pin dir %q: gather: %v", pinDir, err)
		}
		for _, f := range fams {
			if strings.HasPrefix(f.GetName(), "netreconcile_datapath_") {
				t.Errorf("pin dir %q: %s reported without a datapath", pinDir, f.GetName())
			}
		}
	}
}
