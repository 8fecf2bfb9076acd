package daemon

import (
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// unboundPod is the pod label of drops on an interface that had no
// source binding: no pod to charge them to.
const unboundPod = "unbound"

// datapathCollector reports the datapath's defences (reconcile.Defences)
// when scraped, reading the pinned maps then: the counters live in the
// kernel, so there is nothing to poll between scrapes, and a datapath
// replaced since the last scrape is simply read anew.
type datapathCollector struct {
	src                    atomic.Pointer[dpSource]
	drops, entries, gcRuns *prometheus.Desc
}

// dpSource is where the collector reads, and the file whose pods name
// addresses (named on a scrape, not on every reload of the file: a
// cluster's file has 50,000 of them).
type dpSource struct {
	pinDir string
	file   *spec.Resolved
	log    logr.Logger
}

func newDatapathCollector(ns string) *datapathCollector {
	return &datapathCollector{
		drops: prometheus.NewDesc(prometheus.BuildFQName(ns, "datapath", "drops_total"),
			"Packets the datapath dropped, by local pod (namespace/name, its address when the file does not name it, "+
				"or unbound) and reason (source, arp, not-ipv4, malformed, fragment, policy-egress, policy-ingress, "+
				"conntrack-full, no-binding, nat).", []string{"pod", "reason"}, nil),
		entries: prometheus.NewDesc(prometheus.BuildFQName(ns, "datapath", "conntrack_entries"),
			"Connection tracking entries charged to sources, by table (service, policy).", []string{"table"}, nil),
		gcRuns: prometheus.NewDesc(prometheus.BuildFQName(ns, "datapath", "conntrack_gc_runs_total"),
			"Walks of the in-kernel conntrack collector.", nil, nil),
	}
}

// set points the collector at a pin directory and the pods of a file.
func (c *datapathCollector) set(pinDir string, file *spec.Resolved, log logr.Logger) {
	c.src.Store(&dpSource{pinDir: pinDir, file: file, log: log})
}

func (c *datapathCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.drops
	ch <- c.entries
	ch <- c.gcRuns
}

// Collect reads the maps. Without a datapath (none yet, or one this build
// cannot read) it reports nothing rather than failing the whole scrape.
func (c *datapathCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.src.Load()
	if src == nil {
		return
	}
	def, err := reconcile.InspectDefences(src.pinDir, reconcile.PodNames(src.file))
	if err != nil {
		src.log.Error(err, "datapath metrics not read", "pinDir", src.pinDir)
		return
	}
	if def == nil {
		return
	}
	var svc, pol uint32
	for _, p := range def.Pods {
		pod := p.Pod
		if pod == "" {
			pod = p.Address
		}
		for reason, n := range p.Drops {
			ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(n), pod, reason)
		}
		svc += p.Conntrack.Service
		pol += p.Conntrack.Policy
	}
	for reason, n := range def.Unbound {
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(n), unboundPod, reason)
	}
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(svc), "service")
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(pol), "policy")
	ch <- prometheus.MustNewConstMetric(c.gcRuns, prometheus.CounterValue, float64(def.Collector.Runs))
}
