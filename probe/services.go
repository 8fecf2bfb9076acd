package probe

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// Through a service the load balancer picks the backend, so a connection
// is expected to get through when the policies allow it to every backend
// and not to when they allow it to none; with some allowing it the answer
// is the backend's draw, and the cell is shown but not judged.
const (
	expectDenied  = 0
	expectAllowed = 1
	expectEither  = 2
)

// ServiceMatrix is the outcome of connections from every pod to every
// service port (TCP and UDP) that has backends, through its clusterIP.
type ServiceMatrix struct {
	Targets  []ServiceTarget
	Expected [][]int  // [pod][target]: expectDenied, expectAllowed or expectEither
	Observed [][]bool // [pod][target]
	// Disagreements are the judged cells where Observed differs.
	Disagreements []string
}

// ServiceTarget is one port of a service, reached at its clusterIP.
type ServiceTarget struct {
	Service string `json:"service"`
	Target
	IP netip.Addr `json:"ip"`
}

func (t ServiceTarget) String() string { return fmt.Sprintf("%s %s", t.Service, t.Target) }

// serviceTargets lists the TCP and UDP ports of r's services that have a
// backend (every one of them on nodes, when given), and the backends'
// target ports (listeners are needed there).
func serviceTargets(r *spec.Resolved, res *Result, nodes []string) (svcs []ServiceTarget, backendPorts []Target) {
	idx := spec.NewPodIndex(r.Pods, nil)
	elsewhere := 0
	for i := range r.Services {
		svc := &r.Services[i]
		for _, sp := range svc.Ports {
			if sp.Protocol == spec.ProtocolSCTP {
				continue
			}
			bs := r.BackendsIn(idx, svc, sp)
			if len(bs) == 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("service %s %d/%s has no backend: not probed (it refuses connections)", svc.Key, sp.Port, sp.Protocol))
				continue
			}
			if len(nodes) > 0 && slices.ContainsFunc(bs, func(b spec.Backend) bool { return !slices.Contains(nodes, b.Pod.Node) }) {
				elsewhere++
				continue
			}
			svcs = append(svcs, ServiceTarget{Service: svc.Key, Target: Target{sp.Port, sp.Protocol}, IP: svc.ClusterIP})
			for _, b := range bs {
				backendPorts = append(backendPorts, Target{b.Port, sp.Protocol})
			}
		}
	}
	if elsewhere > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d service ports with a backend on another node than --nodes: not probed", elsewhere))
	}
	return svcs, backendPorts
}

// expectServices fills m.Expected from the policies (explain's verdicts
// per backend).
func expectServices(r *spec.Resolved, pods []*pod, m *ServiceMatrix) error {
	j := policy.NewJudge(r)
	m.Expected = make([][]int, len(pods))
	for i, p := range pods {
		m.Expected[i] = make([]int, len(m.Targets))
		for k, t := range m.Targets {
			_, backends, err := policy.ServiceBackends(r, t.IP, t.Port, t.Proto)
			if err != nil {
				return err
			}
			allowed := 0
			for _, b := range backends {
				if j.Allowed(policy.PodEndpoint(p.key), policy.PodEndpoint(b.Pod), b.Port, t.Proto) {
					allowed++
				}
			}
			switch allowed {
			case 0:
				m.Expected[i][k] = expectDenied
			case len(backends):
				m.Expected[i][k] = expectAllowed
			default:
				m.Expected[i][k] = expectEither
			}
		}
	}
	return nil
}

// observeServices tries every pod to every service target, retrying the
// cells that failed, and lists the disagreements.
func observeServices(ctx context.Context, pods []*pod, m *ServiceMatrix, o Options) error {
	m.Observed = grid2(len(pods), len(m.Targets))
	type cell struct{ i, k int }
	var todo []cell
	for i := range pods {
		for k := range m.Targets {
			todo = append(todo, cell{i, k})
		}
	}
	for attempt := 0; attempt <= max(o.Retries, 0) && len(todo) > 0; attempt++ {
		var mu sync.Mutex
		var failed []cell
		var wg sync.WaitGroup
		sem := make(chan struct{}, o.Parallel)
		for _, c := range todo {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				t := m.Targets[c.k]
				ok := try(pods[c.i], &pod{key: t.Service, ip: t.IP.String()}, t.Target, o.Timeout)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					m.Observed[c.i][c.k] = true
				} else {
					failed = append(failed, c)
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		todo = failed
	}
	for i, p := range pods {
		for k, t := range m.Targets {
			e := m.Expected[i][k]
			if e != expectEither && (e == expectAllowed) != m.Observed[i][k] {
				m.Disagreements = append(m.Disagreements, fmt.Sprintf("%s -> %s (%s): expected %s, observed %s",
					p.key, t, t.IP, word(e == expectAllowed), word(m.Observed[i][k])))
			}
		}
	}
	return nil
}

func word(ok bool) string {
	if ok {
		return "allowed"
	}
	return "denied"
}

func grid2(rows, cols int) [][]bool {
	m := make([][]bool, rows)
	for i := range m {
		m[i] = make([]bool, cols)
	}
	return m
}
