package driver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
)

// TraceEnv names the environment variable that sets Config.TraceDir when
// the Config leaves it empty.
const TraceEnv = "LINKSIM_BROWSER_TRACE"

// traceCategories are what a browser trace records: each page's rendering
// (style, layout, paint, frames), the compositor's and the display's work,
// font look-ups, and the pages' performance marks (the app's linksim.*
// steps), so a window can be cut from one mark to another.
var traceCategories = []string{
	"devtools.timeline", "disabled-by-default-devtools.timeline", "disabled-by-default-devtools.timeline.frame",
	"blink.user_timing", "toplevel", "cc", "viz", "fonts",
}

// tracer writes a Chromium trace, in the JSON array format DevTools'
// Performance panel and Perfetto open, as the browser hands it over.
type tracer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	f      *os.File
	events int
	err    error
	done   chan struct{} // closed when the browser has handed over all of it
}

// startTrace starts tracing the whole browser from its first tab, ctx, into
// a new file in dir.
func startTrace(ctx context.Context, dir string) (*tracer, error) {
	f, err := os.CreateTemp(dir, "trace-*.json")
	if err != nil {
		return nil, err
	}
	t := &tracer{f: f, w: bufio.NewWriter(f), done: make(chan struct{})}
	t.w.WriteString("[")
	chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *tracing.EventDataCollected:
			t.mu.Lock()
			defer t.mu.Unlock()
			for _, v := range e.Value {
				if t.events > 0 {
					t.w.WriteString(",\n")
				}
				if _, err := t.w.Write(v); err != nil && t.err == nil {
					t.err = err
				}
				t.events++
			}
		case *tracing.EventTracingComplete:
			if e.DataLossOccurred {
				t.mu.Lock()
				t.err = errors.Join(t.err, errors.New("the browser's trace buffer overflowed: the trace misses events"))
				t.mu.Unlock()
			}
			close(t.done)
		}
	})
	_, err = chromedp.Call(ctx, tracing.Start, tracing.StartParams{
		TransferMode: tracing.StartTransferModeReportEvents,
		TraceConfig:  &tracing.TraceConfig{IncludedCategories: traceCategories},
	})
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return t, nil
}

// stop ends the trace and completes its file, waiting up to a minute for
// the browser to hand the rest over.
func (t *tracer) stop(ctx context.Context) error {
	_, err := chromedp.Call(ctx, tracing.End, cdp.Empty{})
	if err == nil {
		select {
		case <-t.done:
		case <-time.After(time.Minute):
			err = errors.New("the browser did not hand the whole trace over within a minute")
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w.WriteString("]\n")
	err = errors.Join(err, t.err, t.w.Flush(), t.f.Close())
	if err != nil {
		return fmt.Errorf("driver: trace %s: %w", t.f.Name(), err)
	}
	return nil
}
