package cli

import (
	"context"
	"io"
	"os"
	"testing"
)

func BenchmarkZZPlanNode(b *testing.B) {
	file := os.Getenv("ZZFILE")
	state := b.TempDir()
	for b.Loop() {
		root := NewRoot("bench")
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs([]string{"plan", "-f", file, "--node", "n0", "--observed", "empty", "--state-dir", state})
		if code, msg := Exit(root.ExecuteContext(context.Background())); code != 0 {
			b.Fatalf("plan: exit %d: %s", code, msg)
		}
	}
}
