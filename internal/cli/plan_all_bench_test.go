package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

// BenchmarkPlanAllNodes is plan --all-nodes --observed empty of the
// 100-node cluster (scaletopo.Cluster: 5,000 veth pods, 1,000 services,
// 200 policies), from reading the file to the text written. Goal
// (issue 16): under 5 s for the whole command.
func BenchmarkPlanAllNodes(b *testing.B) {
	file := filepath.Join(b.TempDir(), "cluster100.yaml")
	if err := os.WriteFile(file, scaletopo.Cluster(100), 0o644); err != nil {
		b.Fatal(err)
	}
	state := b.TempDir()
	for _, output := range []string{"text", "json"} {
		b.Run(output, func(b *testing.B) {
			for b.Loop() {
				root := NewRoot("bench")
				root.SetOut(io.Discard)
				root.SetErr(io.Discard)
				root.SetArgs([]string{"plan", "-f", file, "--all-nodes", "--observed", "empty", "-o", output, "--state-dir", state})
				if code, msg := Exit(root.ExecuteContext(context.Background())); code != 0 {
					b.Fatalf("plan: exit %d: %s", code, msg)
				}
			}
		})
	}
}
