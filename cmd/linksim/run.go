package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
	"github.com/linksim/linksim/scenarios"
	"github.com/linksim/linksim/webclient/driver"
)

func runCmd() *cobra.Command {
	var (
		suite, relayFlag, thresholdFile, topology string
		layout                                    string
		outFlags                                  []string
		thresholds                                reports.Thresholds
		verbose, list                             bool
		nodes                                     int
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run scenarios and write a scored report",
		Long: `Run scenarios, each on a fresh relay, and score them: every message must
reach every device it was meant for exactly once, in order and intact, and
each step's latency is measured. Writes report.json, junit.xml and
report.html to the --out folder and prints a summary; --out json=FILE and
--out csv=FILE also stream every recorded event while the run goes.

Before anything starts, linksim checks in about a second that every output
can be written and that the relay backend can run (Docker answers, the
external relay answers /healthz and /relay.json), and names each problem.

Exit codes: 0 passed; 1 a scenario failed, or none passed; 3 every scenario
passed but a threshold did not hold; 4 setup error (bad flag, --out not
writable, relay unreachable, no Docker); 130 interrupted. Ctrl-C (or SIGTERM)
stops the run at once, tears down relays, browsers and containers, and still
writes the report, marked "interrupted"; a second Ctrl-C kills linksim.

The correctness thresholds (lost==0, duplicated==0, reordered==0,
corrupted==0, undecryptable==0, unexpected==0) always apply; add latency
budgets with --threshold, for the whole run or a scope of it
('msg.deliver{label:!fault} p99<100ms'); see docs/reports.md.

Browser scenarios open the web app in a shared headless Chromium; --layout
context (the default) gives each page a browser context of its own, --layout
tabs opens every page as a tab of one context (cheaper; each page still
keeps its state in a database of its own). See docs/scenarios.md, "Browser
layouts".`,
		Example: `  linksim run
  linksim run --suite full --out out/full
  linksim run --out out/full --out json=events.ndjson --out csv=events.csv
  linksim run --suite 'messaging && !reconnect' --threshold 'msg.deliver p99<250ms'
  linksim run --relay container --suite reconnect
  linksim run --suite mirror                       # both topologies side by side under faults
  linksim run --suite smoke --topology both        # every smoke flow that can, on both topologies
  linksim run --relay cluster-process --suite cluster   # relay nodes on 3 NATS servers, with faults
  linksim run --relay cluster --nodes 3 --suite smoke   # the same as containers on their own Docker network
  linksim run --relay ws://127.0.0.1:8080/ws
  linksim run --suite browser --layout tabs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if layout != driver.LayoutContext && layout != driver.LayoutTabs {
				return fmt.Errorf("--layout %q: want %q (a browser context per page) or %q (tabs of one context)",
					layout, driver.LayoutContext, driver.LayoutTabs)
			}
			flows, err := scenarios.Select(suite)
			if err != nil {
				return err
			}
			flows, multiDeviceOnly, err := scenarios.WithTopology(flows, topology)
			if err != nil {
				return err
			}
			if len(flows) == 0 {
				return fmt.Errorf("suite %q selects no scenario that runs on the %s topology", suite, topology)
			}
			if len(multiDeviceOnly) > 0 {
				fmt.Printf("linksim: %d of the scenarios selected look inside multi-device companions and do not run on the %s topology\n", len(multiDeviceOnly), topology)
			}
			if list {
				for _, f := range flows {
					fmt.Printf("%-60s [%s]\n", f.Name(), strings.Join(f.Labels, ", "))
				}
				return nil
			}
			outs, err := parseOutputs(outFlags)
			if err != nil {
				return err
			}
			all := reports.DefaultThresholds()
			if thresholdFile != "" {
				fromFile, err := reports.LoadThresholds(thresholdFile)
				if err != nil {
					return err
				}
				all = append(all, fromFile...)
			}
			all = append(all, thresholds...)
			if !verbose {
				// testcontainers announces itself through its global logger
				// (the harness sends its per-container lines to cfg.Log).
				tclog.SetDefault(tclog.NewNoopLogger())
			}
			streams, err := preflight(cmd.Context(), outs, relayFlag)
			if err != nil {
				return err
			}
			defer streams.Close()
			prog := newProgress(os.Stdout, isTerminal(os.Stdout), time.Second)
			defer prog.Close()
			if err := prepare(prog, relayFlag); err != nil {
				return err
			}
			cfg := scenarios.RunConfig{Name: "suite " + suite, Relay: relayFlag, Progress: prog, Watch: streams.Write}
			cfg.Env.Backend = relayFlag
			cfg.Env.Nodes = nodes
			cfg.Env.BrowserLayout = layout
			if verbose {
				cfg.Log = os.Stderr
			}
			fmt.Fprintf(prog, "linksim: running %d scenarios (suite %q) against the %s relay\n", len(flows), suite, relayFlag)
			defer harness.CloseBrowsers()
			r := scenarios.Run(cmd.Context(), flows, cfg)
			prog.Close()
			r.Meta = buildMeta()
			r.Meta["suite"] = suite
			r.Evaluate(all)
			if err := r.WriteSummary(os.Stdout); err != nil {
				return err
			}
			if err := errors.Join(r.WriteDir(outs.dir), streams.Close()); err != nil {
				return err
			}
			fmt.Printf("\nreport: %s\n", abs(filepath.Join(outs.dir, reports.HTMLFile)))
			if outs.json != "" {
				fmt.Printf("events: %s (NDJSON)\n", abs(outs.json))
			}
			if outs.csv != "" {
				fmt.Printf("events: %s (CSV)\n", abs(outs.csv))
			}
			if r.Interrupted {
				fmt.Println("INTERRUPTED: the run was stopped; the report covers what ran until then")
			}
			return verdict(r)
		},
	}
	f := cmd.Flags()
	f.StringVar(&suite, "suite", "smoke", `scenarios to run: "smoke", "full", or a label expression (labels: smoke, pairing, messaging, reconnect, security, profile, browser, media, fault, field, sync, calls, mirror, cluster)`)
	f.StringVar(&relayFlag, "relay", harness.BackendFromEnv(), `relay backend, a fresh one per scenario: "embedded" (in process), "process" (the linksim binary), "container" (Docker, image built FROM scratch), "cluster" (relay nodes on three NATS servers with JetStream, as containers on their own Docker network), "cluster-process" (the same as child processes on 127.0.0.x, no Docker), or ws://host:port/ws for a relay you run ($LINKSIM_RELAY sets the default)`)
	f.IntVar(&nodes, "nodes", 0, "relay nodes of a cluster backend (0: 2); devices get their home nodes in turn and fail over to the others")
	f.StringArrayVar(&outFlags, "out", nil, `where results go (repeatable): DIR for report.json, junit.xml and report.html (default "`+defaultOutDir+`"); json=FILE streams every event as NDJSON while the run goes; csv=FILE the same events as CSV`)
	f.Var(&thresholds, "threshold", `a threshold such as 'msg.deliver p99<250ms', 'msg.deliver{label:!fault} p99<100ms' or 'undecryptable rate<0.001' (repeatable)`)
	f.StringVar(&thresholdFile, "threshold-file", "", "a file of thresholds, one per line, # comments")
	f.StringVar(&layout, "layout", driver.LayoutContext, `how browser scenarios lay out pages in Chromium: "context" (a browser context per page, isolated) or "tabs" (tabs of one context, cheaper)`)
	f.BoolVarP(&verbose, "verbose", "v", false, "print the harness's log lines, testcontainers' included")
	f.StringVar(&topology, "topology", harness.MultiDevice, `how web clients are linked: "multidevice" (full devices, they work while the phone is offline), "mirror" (the original WhatsApp Web: the web client only mirrors its phone), or "both", side by side; flows that look inside a multi-device companion run on multidevice only`)
	f.BoolVar(&list, "list", false, "list the scenarios --suite selects, with their labels, and exit")
	return cmd
}

// checkTimeout bounds the checks before a run: they ask loopback servers
// and the local Docker engine, which answer in milliseconds.
const checkTimeout = time.Second

// preflight checks, before anything starts, what would otherwise fail
// minutes into a run: every output writable, the relay backend usable. Each
// problem is one line of the error. It opens the event streams.
func preflight(ctx context.Context, outs outputs, backend string) (*eventStreams, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	streams, outErr := outs.open()
	relayErr := harness.CheckBackend(ctx, backend)
	if relayErr != nil {
		relayErr = fmt.Errorf("--relay %s: %w", backend, relayErr)
	}
	if err := errors.Join(outErr, relayErr); err != nil {
		if streams != nil {
			streams.Close()
		}
		return nil, fmt.Errorf("cannot run:\n%w", err)
	}
	return streams, nil
}

// prepare builds what the backend needs (the linksim binary, the relay
// image), which can take a minute on a cold build cache.
func prepare(prog *progress, backend string) error {
	switch backend {
	case harness.Process, harness.Container, harness.ClusterProcess, harness.Cluster:
	default:
		return nil
	}
	start := time.Now()
	fmt.Fprintf(prog, "linksim: preparing the %s relay backend ...\n", backend)
	if err := harness.Prepare(backend); err != nil {
		return fmt.Errorf("--relay %s: %w", backend, err)
	}
	fmt.Fprintf(prog, "linksim: %s relay backend ready in %s\n", backend, time.Since(start).Round(time.Millisecond))
	return nil
}

// verdict is the exit a finished run gets.
func verdict(r *reports.Report) error {
	if r.Interrupted {
		return exitError{exitInterrupted}
	}
	if r.Passed() {
		return nil
	}
	// A run where no scenario passed failed as a run of scenarios, whatever
	// its thresholds say.
	c := r.Count()
	if r.FailedThresholds() > 0 && c.Failed == 0 && c.Passed > 0 {
		return exitError{exitThreshold}
	}
	return exitError{exitFailed}
}
