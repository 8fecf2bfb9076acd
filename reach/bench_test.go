package reach_test

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/reach"
	"github.com/netreconcile/netreconcile/spec"
)

// clusterTopology builds a 1000-node cluster: 100 namespaces labelled by
// team and env, 50 pods on each node (50,000) spread over the namespaces
// with 50 app labels, 10,000 services (two per namespace and app) and
// 2,000 policies (20 per namespace, one in ten with an egress rule). Each
// pod also carries a label of its own, as pods do (a name, a hash), which
// no selector names. It is
// built in memory: written out it is some 9 MB, over spec.MaxFileSize.
// namespaceTeam overrides namespaces' team labels; pol0, when set,
// replaces policy pol0.
func clusterTopology(namespaceTeam map[string]string, pol0 *spec.Policy) *spec.Topology {
	t := &spec.Topology{APIVersion: spec.APIVersion, Kind: spec.Kind,
		Cluster: spec.Cluster{PodCIDR: "10.0.0.0/8", ServiceCIDR: "172.20.0.0/16"}}
	for i := range 100 {
		ns := fmt.Sprintf("ns%d", i)
		team := fmt.Sprintf("t%d", i%10)
		if v, ok := namespaceTeam[ns]; ok {
			team = v
		}
		t.Namespaces = append(t.Namespaces, spec.Namespace{Name: ns, Labels: map[string]string{"team": team, "env": []string{"prod", "dev"}[i%2]}})
	}
	for i := range 1000 {
		t.Nodes = append(t.Nodes, spec.Node{Name: fmt.Sprintf("n%d", i), Address: fmt.Sprintf("192.168.%d.%d/16", i/250, 1+i%250),
			PodCIDR: fmt.Sprintf("10.%d.%d.0/24", 1+i/250, i%250)})
	}
	ports := []spec.ContainerPort{{Name: "web", Port: 8080}, {Name: "metrics", Port: 9090}}
	for j := range 50000 {
		n := j / 50
		t.Pods = append(t.Pods, spec.Pod{Name: fmt.Sprintf("p%d", j), Namespace: fmt.Sprintf("ns%d", j%100), Node: fmt.Sprintf("n%d", n),
			IP: fmt.Sprintf("10.%d.%d.%d", 1+n/250, n%250, 2+j%50), Mode: spec.ModeVeth,
			Labels: map[string]string{"app": fmt.Sprintf("a%d", (j/100)%50), "instance": fmt.Sprintf("p%d", j)}, Ports: ports})
	}
	for k := range 10000 {
		t.Services = append(t.Services, spec.Service{Name: fmt.Sprintf("s%d", k), Namespace: fmt.Sprintf("ns%d", k%100),
			ClusterIP: fmt.Sprintf("172.20.%d.%d", k/250, 1+k%250), Selector: map[string]string{"app": fmt.Sprintf("a%d", (k/100)%50)},
			Ports: []spec.ServicePort{{Port: 80, TargetPort: spec.FromString("web")}}})
	}
	for k := range 2000 {
		if k == 0 && pol0 != nil {
			t.Policies = append(t.Policies, *pol0)
			continue
		}
		p := spec.Policy{Name: fmt.Sprintf("pol%d", k), Namespace: fmt.Sprintf("ns%d", k%100), Spec: spec.PolicySpec{
			PodSelector: appSelector(k % 50),
			Ingress: []spec.PolicyIngressRule{{
				From: []spec.PolicyPeer{{PodSelector: ptr(appSelector((k + 1) % 50))},
					{NamespaceSelector: &spec.LabelSelector{MatchLabels: map[string]string{"team": fmt.Sprintf("t%d", k%10)}}}},
				Ports: []spec.PolicyPort{{Port: ptr(spec.FromInt(8080))}}}}}}
		if k%10 == 0 {
			p.Spec.PolicyTypes = []string{spec.PolicyIngress, spec.PolicyEgress}
			p.Spec.Egress = []spec.PolicyEgressRule{{To: []spec.PolicyPeer{{NamespaceSelector: &spec.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}}}}
		}
		t.Policies = append(t.Policies, p)
	}
	return t
}

func appSelector(n int) spec.LabelSelector {
	return spec.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("a%d", n)}}
}

func ptr[T any](v T) *T { return &v }

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakHeap samples the live heap until stop is closed and returns the
// largest value seen.
func peakHeap(stop <-chan struct{}) func() uint64 {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			mu.Lock()
			peak = max(peak, sample[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// BenchmarkDiffCluster diffs two 1000-node / 50,000-pod / 10,000-service /
// 2,000-policy topologies, from the decoded files (both resolved) to the
// Diff, and reports the peak live heap, the decoded files included. Goal:
// < 3 s and < 500 MB.
func BenchmarkDiffCluster(b *testing.B) {
	// pol0 in the edited file takes metrics (9090) from app a2 instead of
	// web (8080) from a1 and team t0.
	pol0 := &spec.Policy{Name: "pol0", Namespace: "ns0", Spec: spec.PolicySpec{PodSelector: appSelector(0),
		Ingress: []spec.PolicyIngressRule{{From: []spec.PolicyPeer{{PodSelector: ptr(appSelector(2))}},
			Ports: []spec.PolicyPort{{Port: ptr(spec.FromInt(9090))}}}}}}
	edits := map[string]func() *spec.Topology{
		"one-policy":          func() *spec.Topology { return clusterTopology(nil, pol0) },
		"one-namespace-label": func() *spec.Topology { return clusterTopology(map[string]string{"ns5": "t6"}, nil) },
	}
	for _, name := range []string{"one-policy", "one-namespace-label"} {
		b.Run(name, func(b *testing.B) {
			var peak uint64
			var cpu, compute time.Duration
			var d *reach.Diff
			for b.Loop() {
				runtime.GC()
				stop := make(chan struct{})
				wait := peakHeap(stop)
				b.StopTimer()
				ot, nt := clusterTopology(nil, nil), edits[name]()
				b.StartTimer()
				start := cpuTime()
				old, err := spec.Resolve(ot, nil)
				if err != nil {
					b.Fatal(err)
				}
				new, err := spec.Resolve(nt, nil)
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				d = mustCompute(b, old, new)
				compute += time.Since(t0)
				cpu += cpuTime() - start
				close(stop)
				peak = max(peak, wait())
			}
			if d.Connections == 0 {
				b.Fatalf("%s: no connection changed verdict", name)
			}
			b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
			// CPU time (every thread, the collector's included) tells the
			// cost apart from waiting on a shared machine.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(compute.Seconds()/float64(b.N), "compute-s/op") // reach.Compute alone
			b.ReportMetric(float64(d.Connections), "changed-connections")
			b.ReportMetric(float64(len(d.Groups)), "groups")
		})
	}
}
