package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/reports"
)

// Select picks flows: "smoke", "full" (every flow), or a Ginkgo label
// expression such as "pairing && !security".
func Select(suite string) ([]Flow, error) {
	if suite == "full" {
		return All(), nil
	}
	match, err := types.ParseLabelFilter(suite)
	if err != nil {
		return nil, fmt.Errorf("suite %q: %w", suite, err)
	}
	var out []Flow
	for _, f := range All() {
		if match(f.Labels) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("suite %q selects no scenario", suite)
	}
	return out, nil
}

// RunConfig configures Run.
type RunConfig struct {
	// Env is the base environment of every flow; each flow still gets a
	// fresh relay. Its Recorder is replaced by the run's.
	Env harness.Config
	// Name names the run in the report.
	Name string
	// Relay names the relay backend in the report.
	Relay string
	// Progress gets a line as each flow starts and ends; nil discards.
	Progress io.Writer
	// Log gets the harness's own log lines; nil discards.
	Log io.Writer
	// Watch, if set, sees every event as it is recorded (a reports.Sink).
	Watch func(reports.Event)
}

// Run runs flows one after another, each on a fresh environment, all
// recording into one recorder, and returns the report (thresholds not yet
// applied). When ctx ends (Ctrl-C), the running flow is stopped and torn
// down, the rest are listed as not run, and the report is marked
// Interrupted.
func Run(ctx context.Context, flows []Flow, cfg RunConfig) *reports.Report {
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	rec := reports.NewRecorder()
	if cfg.Watch != nil {
		rec.AddSink(reports.SinkFunc(cfg.Watch))
	}
	var results []reports.ScenarioResult
	for i, f := range flows {
		if ctx.Err() != nil { // interrupted: list what did not run, run nothing more
			results = append(results, reports.ScenarioResult{Name: f.Name(), Labels: f.Labels, Status: reports.Skipped, Failure: "not run: " + interrupted})
			continue
		}
		head := fmt.Sprintf("[%d/%d] ", i+1, len(flows))
		// The name is cut, not the " ...": the line stays within the
		// console's width and still reads as a step under way.
		name := reports.Ellipsize(f.Name(), reports.ConsoleWidth-len(head)-len(" ..."))
		fmt.Fprintf(progress, "%s%s ...\n", head, name)
		start := time.Now()
		// Everything the flow records carries its name and labels, so
		// metrics and thresholds can be cut per scenario.
		flowRec := rec.ChildFor(f.Name(), f.Labels)
		artifacts, err := runOne(ctx, f, cfg, flowRec)
		res := reports.ScenarioResult{Name: f.Name(), Labels: f.Labels, Status: reports.Passed, Duration: time.Since(start), Artifacts: artifacts}
		var skip *harness.SkipError
		switch {
		case ctx.Err() != nil:
			// Whatever the flow saw after the interrupt is no verdict on
			// it, nor are the messages it had in flight.
			flowRec.Withdraw()
			res.Status, res.Failure = reports.Skipped, interrupted+" while running"
		case errors.As(err, &skip):
			// What a skipped flow sent before it found it cannot run here
			// is not judged: it never finished waiting for it.
			flowRec.Withdraw()
			res.Status, res.Failure = reports.Skipped, skip.Reason
		case err != nil:
			res.Status, res.Failure = reports.Failed, err.Error()
		}
		fmt.Fprintf(progress, "      %s in %s%s\n", res.Status, res.Duration.Round(time.Millisecond), failureLine(res.Failure))
		results = append(results, res)
	}
	r := reports.New(rec, reports.Config{Name: cfg.Name, Relay: cfg.Relay})
	r.Scenarios = results
	r.Interrupted = ctx.Err() != nil
	return r
}

// interrupted says why a scenario has no verdict when ctx ended the run.
const interrupted = "interrupted"

// runOne runs f on a fresh environment recording into rec and returns,
// when it failed, the folder its artifacts went to, and its error.
func runOne(ctx context.Context, f Flow, cfg RunConfig, rec *reports.Recorder) (string, error) {
	s := harness.NewSession(cfg.Log).WithContext(ctx)
	var (
		runErr error
		env    *harness.Env
	)
	failure := s.Run(func() {
		envCfg := cfg.Env
		envCfg.Recorder = rec
		if f.Configure != nil {
			f.Configure(&envCfg)
		}
		env = harness.Start(s, envCfg)
		fctx, cancel := context.WithTimeout(ctx, f.Timeout)
		defer cancel()
		if runErr = f.Execute(fctx, env); runErr != nil {
			s.Fail() // so the cleanups keep the artifacts
		}
	})
	var artifacts string
	if env != nil {
		artifacts = env.Artifacts()
	}
	if failure != nil {
		return artifacts, failure
	}
	return artifacts, runErr
}

func failureLine(failure string) string {
	if failure == "" {
		return ""
	}
	return ": " + failure
}
