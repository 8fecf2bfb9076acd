// Command netreconcile makes Linux container networking declarative: it
// observes a node's kernel state, diffs it against a topology file and
// converges it. The verbs live in internal/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/netreconcile/netreconcile/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// main runs the command until it ends or SIGINT/SIGTERM cancels it, and
// exits with the status the command chose.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewRoot(version).ExecuteContext(ctx)
	stop()
	code, message := cli.Exit(err)
	if message != "" {
		fmt.Fprintln(os.Stderr, message)
	}
	os.Exit(code)
}
