package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/netreconcile/netreconcile/state"
)

// SavedPlanVersion versions the saved plan file (plan --out). Its major
// number changes when an older binary could not check a newer file.
const SavedPlanVersion = "1.0"

// ErrStalePlan is wrapped when a saved plan no longer matches the node:
// what it was made from has changed since.
var ErrStalePlan = errors.New("saved plan is stale")

// SavedPlan is plan --out's file: the plan, and what apply needs to
// recompute it and to check that the node is as it was.
type SavedPlan struct {
	Version string `json:"saved_plan_version"`
	// Binary is the netreconcile version that made the plan: another
	// one may plan the same file differently.
	Binary string `json:"netreconcile_version"`
	Node   string `json:"node"`
	// NodeNetns and BPFFS are --node-netns and the pin directory the
	// plan was made with.
	NodeNetns string `json:"node_netns,omitempty"`
	BPFFS     string `json:"bpffs"`
	// File names the topology file; Topology is its text, which apply
	// plans again (the file may have changed or gone since).
	File       string `json:"file"`
	FileSHA256 string `json:"file_sha256"`
	Topology   string `json:"topology"`
	// ObservedSHA256 digests Observed's owned and foreign objects.
	ObservedSHA256 string    `json:"observed_sha256"`
	Observed       *Observed `json:"observed"`
	Plan           *Plan     `json:"plan"`
}

// FileDigest is the hex SHA-256 of a topology file's bytes.
func FileDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ObservedDigest is the hex SHA-256 of what a plan is computed from in an
// observation: every owned object's kind, key and attributes, and the
// foreign objects. Timings, warnings and show's extras are left out.
func ObservedDigest(obs *Observed) (string, error) {
	h := sha256.New()
	for _, k := range state.Kinds() {
		for _, o := range obs.Owned.Of(k) {
			fmt.Fprintf(h, "%s %q", k, o.Key())
			for _, a := range o.Attrs() {
				fmt.Fprintf(h, " %q=%q", a.Name, a.Value)
			}
			fmt.Fprintln(h)
		}
	}
	b, err := json.Marshal(obs.Foreign) // maps marshal in key order
	if err != nil {
		return "", fmt.Errorf("digest observed state: %w", err)
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CheckSaved compares a plan made now (res) with the saved one: it
// returns an error wrapping ErrStalePlan, naming what changed, when the
// node's owned or foreign objects differ from those the saved plan saw,
// or when the plan itself comes out different.
func CheckSaved(saved *SavedPlan, res *Result) error {
	digest, err := ObservedDigest(res.Observed)
	if err != nil {
		return err
	}
	var what []string
	if digest != saved.ObservedSHA256 {
		what = ObservedDrift(saved.Observed, res.Observed)
		if len(what) == 0 {
			what = []string{"the observed state's digest differs"}
		}
	}
	if d := PlanDrift(saved.Plan, res.Plan); len(d) > 0 {
		what = append(what, d...)
	}
	if len(what) == 0 {
		return nil
	}
	const most = 20
	if n := len(what); n > most {
		what = append(what[:most], fmt.Sprintf("and %d more", n-most))
	}
	return fmt.Errorf("%w: node %s changed since the plan was made:\n  %s\nnothing was changed; plan again (plan --out)",
		ErrStalePlan, saved.Node, strings.Join(what, "\n  "))
}

// ObservedDrift lists the differences between two observations of a
// node, object by object: gone, new, or with changed attributes.
func ObservedDrift(before, now *Observed) []string {
	var out []string
	for _, k := range state.Kinds() {
		for _, o := range before.Owned.Of(k) {
			n := now.Owned.Get(k, o.Key())
			if n == nil {
				out = append(out, fmt.Sprintf("%s %s: gone", k, o.Key()))
				continue
			}
			if d := attrDrift(o.Attrs(), n.Attrs()); d != "" {
				out = append(out, fmt.Sprintf("%s %s: %s", k, o.Key(), d))
			}
		}
		for _, o := range now.Owned.Of(k) {
			if before.Owned.Get(k, o.Key()) == nil {
				out = append(out, fmt.Sprintf("%s %s: new", k, o.Key()))
			}
		}
	}
	out = append(out, foreignDrift("foreign link", before.Foreign.Links, now.Foreign.Links)...)
	out = append(out, foreignDrift("foreign address", before.Foreign.Addrs, now.Foreign.Addrs)...)
	out = append(out, foreignDrift("foreign route", before.Foreign.Routes, now.Foreign.Routes)...)
	out = append(out, foreignDrift("foreign netns", before.Foreign.Netns, now.Foreign.Netns)...)
	return append(out, foreignDrift("foreign vxlan device", before.Foreign.VXLAN, now.Foreign.VXLAN)...)
}

// attrDrift renders the attributes that differ ("mtu 1500 -> 1450").
func attrDrift(before, now []state.Attr) string {
	was := map[string]string{}
	for _, a := range before {
		was[a.Name] = a.Value
	}
	var parts []string
	seen := map[string]bool{}
	for _, a := range now {
		seen[a.Name] = true
		if v, ok := was[a.Name]; !ok || v != a.Value {
			parts = append(parts, fmt.Sprintf("%s %s -> %s", a.Name, quoteEmpty(v), quoteEmpty(a.Value)))
		}
	}
	for _, a := range before {
		if !seen[a.Name] {
			parts = append(parts, fmt.Sprintf("%s %s -> (none)", a.Name, quoteEmpty(a.Value)))
		}
	}
	return strings.Join(parts, ", ")
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// foreignDrift lists the keys of a foreign object map that appeared,
// disappeared or changed.
func foreignDrift[V comparable](what string, before, now map[string]V) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if v, ok := now[k]; !ok {
			out = append(out, fmt.Sprintf("%s %s: gone", what, k))
		} else if v != before[k] {
			out = append(out, fmt.Sprintf("%s %s: %v -> %v", what, k, before[k], v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(now)) {
		if _, ok := before[k]; !ok {
			out = append(out, fmt.Sprintf("%s %s: new", what, k))
		}
	}
	return out
}

// PlanDrift lists how the plan made now differs from the saved one,
// change by change (compared in their JSON form).
func PlanDrift(saved, now *Plan) []string {
	index := func(p *Plan) (map[string]string, []string) {
		m, order := map[string]string{}, []string{}
		for _, c := range p.Changes {
			id := string(c.Action) + " " + c.Kind + " " + c.Key
			b, _ := json.Marshal(c) // a Change always marshals
			m[id] = string(b)
			order = append(order, id)
		}
		return m, order
	}
	was, wasOrder := index(saved)
	is, isOrder := index(now)
	var out []string
	for _, id := range wasOrder {
		if v, ok := is[id]; !ok {
			out = append(out, "the plan no longer has: "+id)
		} else if v != was[id] {
			out = append(out, "the plan now differs in: "+id)
		}
	}
	for _, id := range isOrder {
		if _, ok := was[id]; !ok {
			out = append(out, "the plan now also has: "+id)
		}
	}
	return out
}
