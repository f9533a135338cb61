// Command linksim runs linked-device messaging scenarios against a relay and
// scores them, serves the reference relay, and compares reports.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// errFailed marks a run that completed but did not pass: exit 1 without
// printing the error again.
var errFailed = errors.New("run failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:   "linksim",
		Short: "Test harness and simulator for linked-device messaging",
		Long: `linksim runs simulated phones and web clients against a messaging relay:
pairing by QR code, end-to-end encrypted messaging across every device of
each user, offline delivery and reconnects, logout. Every run is scored:
latency of each step as percentiles, and whether every message reached every
device exactly once, in order, intact.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), relayCmd(), reportCmd(), loadCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errFailed) {
			fmt.Fprintln(os.Stderr, "linksim:", err)
		}
		os.Exit(1)
	}
}
