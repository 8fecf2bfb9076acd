package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/state"
)

// Metrics are the daemon's Prometheus metrics, on their own registry
// (never the global one, so that tests and embedders can make several).
type Metrics struct {
	Registry *prometheus.Registry

	Runs          *prometheus.CounterVec // trigger, result
	Duration      prometheus.Histogram   // seconds per pass
	Applied       *prometheus.CounterVec // kind, action
	Drift         *prometheus.CounterVec // kind
	DriftLatency  prometheus.Histogram   // first kernel event -> repaired
	Errors        *prometheus.CounterVec // stage
	Managed       *prometheus.GaugeVec   // kind
	LastSuccess   prometheus.Gauge       // unix seconds
	ConfigOK      prometheus.Gauge       // 1 when the file last read was valid
	ConfigReloads *prometheus.CounterVec // result
	KernelEvents  *prometheus.CounterVec // kind
	Watched       prometheus.Gauge       // namespaces subscribed
	Ready         prometheus.Gauge       // 1 when the last pass converged
	Info          *prometheus.GaugeVec   // node, file
	Frontends     *prometheus.GaugeVec   // frontend: service entries programmed
	NoBackend     *prometheus.GaugeVec   // frontend: of them, without a backend
	NodePrograms  *prometheus.GaugeVec   // hook: programs on the uplink and service device

	// datapath reports the datapath's drops and conntrack use at scrape
	// time; Run points it at the node's pin directory.
	datapath *datapathCollector
}

// Label values.
const (
	TriggerStart  = "start"
	TriggerFile   = "file"
	TriggerKernel = "kernel"
	TriggerResync = "resync"
	TriggerReload = "reload" // SIGHUP
	TriggerRetry  = "retry"  // after a failed pass
	TriggerApply  = "apply"  // netreconcile apply, through the control socket

	ResultChanged   = "changed"
	ResultUnchanged = "unchanged"
	ResultError     = "error"

	StageLoad      = "load"      // the file could not be read or is invalid
	StageReconcile = "reconcile" // plan or apply failed
	StageSubscribe = "subscribe" // a namespace could not be watched
	StageWatch     = "watch"     // file watching failed or overflowed
)

// NewMetrics makes the metrics and registers them, with the process and
// Go runtime collectors, on a new registry.
func NewMetrics() *Metrics {
	const ns = "netreconcile"
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reconcile_runs_total",
			Help: "Reconcile passes, by what triggered them and their result (changed, unchanged, error)."},
			[]string{"trigger", "result"}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "reconcile_duration_seconds",
			Help: "Duration of reconcile passes (observe, plan, apply, verify).", Buckets: buckets}),
		Applied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "changes_applied_total",
			Help: "Changes applied to the kernel, by object kind and action."}, []string{"kind", "action"}),
		Drift: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "drift_repaired_total",
			Help: "Changes applied while the file was unchanged since the last converged pass: kernel state that drifted, by object kind."},
			[]string{"kind"}),
		DriftLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "drift_repair_seconds",
			Help: "From the first kernel event of a drift to the end of the pass that repaired it.", Buckets: buckets}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "errors_total",
			Help: "Errors, by stage (load, reconcile, subscribe, watch)."}, []string{"stage"}),
		Managed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "managed_objects",
			Help: "Kernel objects netreconcile owns on the node after the last pass, by kind."}, []string{"kind"}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "last_success_timestamp_seconds",
			Help: "Unix time of the end of the last pass that converged."}),
		ConfigOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "config_last_reload_successful",
			Help: "1 when the topology file last read was valid, 0 when it was invalid or missing (the last good one is kept)."}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
			Help: "Reads of a changed topology file, by result (ok, invalid, missing, unreadable)."}, []string{"result"}),
		KernelEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "kernel_events_total",
			Help: "Netlink notifications in watched namespaces that may concern owned objects, by kind."}, []string{"kind"}),
		Watched: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "watched_namespaces",
			Help: "Network namespaces subscribed to (the node's and the pods')."}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "ready",
			Help: "1 when the last pass converged, else 0 (as /readyz)."}),
		Info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "watch_info",
			Help: "Constant 1, labelled with the node and file watched."}, []string{"node", "file"}),
		Frontends: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "service_frontends",
			Help: "Service entries programmed after the last pass that converged, by frontend (clusterIP, nodePort, externalIP)."},
			[]string{"frontend"}),
		NoBackend: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "service_frontends_without_backends",
			Help: "Of service_frontends, those without a backend (refused, or dropped from outside), by frontend."},
			[]string{"frontend"}),
		NodePrograms: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "node_programs",
			Help: "Datapath programs attached to the node's own devices (uplink, service device) after the last pass that converged, by hook."},
			[]string{"hook"}),
		datapath: newDatapathCollector(ns),
	}
	m.Registry.MustRegister(m.Runs, m.Duration, m.Applied, m.Drift, m.DriftLatency, m.Errors, m.Managed,
		m.LastSuccess, m.ConfigOK, m.ConfigReloads, m.KernelEvents, m.Watched, m.Ready, m.Info,
		m.Frontends, m.NoBackend, m.NodePrograms, m.datapath,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	// Series that exist from the start read 0 rather than being absent,
	// so rate() and before/after comparisons work from the first scrape.
	for _, k := range state.Kinds() {
		m.Drift.WithLabelValues(k.String())
		m.Managed.WithLabelValues(k.String())
		for _, a := range []string{"create", "update", "delete", "replace"} {
			m.Applied.WithLabelValues(k.String(), a)
		}
	}
	for _, f := range []string{state.FrontendClusterIP, state.FrontendNodePort, state.FrontendExternalIP} {
		m.Frontends.WithLabelValues(f)
		m.NoBackend.WithLabelValues(f)
	}
	for _, s := range []string{StageLoad, StageReconcile, StageSubscribe, StageWatch} {
		m.Errors.WithLabelValues(s)
	}
	for _, r := range []string{"ok", "invalid", "missing", "unreadable"} {
		m.ConfigReloads.WithLabelValues(r)
	}
	for _, k := range []string{EventLink, EventAddr, EventRoute, EventNeigh, EventNetns, EventOverflow} {
		m.KernelEvents.WithLabelValues(k)
	}
	return m
}

// programmed sets the gauges of what the datapath serves (nil: nothing
// known, left as they are).
func (m *Metrics) programmed(p *reconcile.Programmed) {
	if p == nil {
		return
	}
	for _, f := range []string{state.FrontendClusterIP, state.FrontendNodePort, state.FrontendExternalIP} {
		m.Frontends.WithLabelValues(f).Set(float64(p.Frontends[f]))
		m.NoBackend.WithLabelValues(f).Set(float64(p.Empty[f]))
	}
	m.NodePrograms.Reset()
	for hook, n := range p.Hooks {
		m.NodePrograms.WithLabelValues(hook).Set(float64(n))
	}
}
