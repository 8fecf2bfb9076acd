package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// goal is the least ratio issue 14 accepts for throughput and connection
// rates.
const goal = 0.97

// row is one line of the table.
type row struct {
	section, what       string
	base, cmp           string // medians
	ratio, ratioMedians string // median of the per-round ratios; ratio of the medians
	goal, met           string
	note                string
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func format(v float64, unit string) string {
	if unit == "Gbit/s" {
		return fmt.Sprintf("%.2f %s", v, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

// compareRow compares cmp with base, measured in pairs (base[i] and
// cmp[i] side by side); the goal is judged on the median of the pairs'
// ratios.
func compareRow(section, what, unit string, base, cmp []float64, note string) row {
	var ratios []string
	var rs []float64
	for i := range base {
		r := cmp[i] / base[i]
		rs = append(rs, r)
		ratios = append(ratios, fmt.Sprintf("%.2f", r))
	}
	mr := median(rs)
	met := "yes"
	if mr < goal {
		met = "NO"
	}
	return row{section: section, what: what,
		base: format(median(base), unit), cmp: format(median(cmp), unit),
		ratio: fmt.Sprintf("%.3f", mr), ratioMedians: fmt.Sprintf("%.3f", median(cmp)/median(base)),
		goal: fmt.Sprintf(">= %.2f", goal), met: met,
		note: "per pair: " + strings.Join(ratios, " ") + "; " + note}
}

// collector runs BenchmarkConntrackGC with go test (in its own process
// group, killed whole on a timeout or a signal; its pins live below
// pinRoot, which the caller removes) and adds its rows.
func (b *bench) collector(ctx context.Context, root, pinRoot string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := []string{"test", "-count=1", "-run", "^$", "-bench", "ConntrackGC", "-benchtime", "5x", "./datapath/"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "NR_GC_PIN_ROOT="+pinRoot)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, m, ok := parseBench(sc.Text())
		if !ok {
			continue
		}
		found++
		b.rows = append(b.rows, row{section: "conntrack GC", what: "one collector walk, " + name,
			cmp:  fmt.Sprintf("%s walk", elapsed(time.Duration(m["walk-ns/op"]))),
			goal: "-", met: "-",
			note: fmt.Sprintf("RunGC %s (BPF_PROG_RUN syscall included); scanned %.0f, deleted %.0f; mean of 5 walks, go test -bench ConntrackGC",
				elapsed(time.Duration(m["ns/op"])), m["scanned/op"], m["deleted/op"])})
	}
	if found == 0 {
		return fmt.Errorf("go %s: no BenchmarkConntrackGC results\n%s", strings.Join(args, " "), out)
	}
	return nil
}

// parseBench reads a line "BenchmarkConntrackGC/<name>-<procs> N v unit
// v unit ...".
func parseBench(line string) (string, map[string]float64, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkConntrackGC/") {
		return "", nil, false
	}
	name := strings.TrimPrefix(f[0], "BenchmarkConntrackGC/")
	if i := strings.LastIndex(name, "-"); i > 0 {
		name = name[:i]
	}
	m := map[string]float64{}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return "", nil, false
		}
		m[f[i+1]] = v
	}
	return name, m, true
}

func (b *bench) print() {
	fmt.Printf("one node, veth pods client -> server, a clusterIP service, the server isolated by a policy allowing the client;\n"+
		"with vs without: base = without the defences (%s), compared = with (this tree), %d rounds in alternating order;\n"+
		"clusterIP vs pod IP: base = pod IP, compared = clusterIP, defences on, %d alternated pairs;\n"+
		"values are medians; ratio = median of the per-pair ratios (the goal is judged on it); iperf3 -t %d; new connections: one thread, %v each, server closes first\n",
		oldCommit, b.cfg.rounds, b.cfg.pairs, b.cfg.secs, b.cfg.dur)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "section\tmeasurement\tbase\tcompared\tratio\tratio of medians\tgoal\tmet\tnotes")
	for _, r := range b.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.section, r.what, r.base, r.cmp, r.ratio, r.ratioMedians,
			r.goal, r.met, r.note)
	}
	tw.Flush()
}
