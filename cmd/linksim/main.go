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

// Exit codes, documented in docs/reports.md. Scripts tell a broken system
// (1, 3) from a broken setup (4) and from a run somebody stopped (130). 2
// is left out: Go exits 2 when a program crashes.
const (
	exitPassed      = 0
	exitFailed      = 1   // a scenario failed or none passed; report compare found a regression
	exitThreshold   = 3   // every scenario passed, a threshold did not hold
	exitSetup       = 4   // linksim could not do what was asked: bad flags, --out, relay, Docker
	exitInterrupted = 130 // SIGINT or SIGTERM stopped the run (128 + SIGINT, as shells report)
)

// exitError ends linksim with code; its message, if any, was printed
// already (the summary says why a run failed).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// exitCode maps what a command returned to the process's exit code: an
// error that is not a verdict is a setup error.
func exitCode(err error) int {
	var ee exitError
	switch {
	case err == nil:
		return exitPassed
	case errors.As(err, &ee):
		return ee.code
	}
	return exitSetup
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops the run and lets it tear down and write
		// its partial report; a second one kills linksim at once.
		<-ctx.Done()
		stop()
	}()
	root := &cobra.Command{
		Use:   "linksim",
		Short: "Test harness and simulator for linked-device messaging",
		Long: `linksim runs simulated phones and web clients against a messaging relay:
pairing by QR code, end-to-end encrypted messaging across every device of
each user, offline delivery and reconnects, logout. Every run is scored:
latency of each step as percentiles, and whether every message reached every
device exactly once, in order, intact.

Exit codes: 0 passed, 1 a scenario failed (or none passed, or report compare
found a regression), 3 only thresholds failed, 4 setup error (bad flags,
unwritable --out, unreachable relay, no Docker), 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCmd(), relayCmd(), natsCmd(), reportCmd(), versionCmd(), loadCmd())
	err := root.ExecuteContext(ctx)
	if err != nil && !errors.As(err, new(exitError)) {
		fmt.Fprintln(os.Stderr, "linksim:", err)
	}
	os.Exit(exitCode(err))
}
