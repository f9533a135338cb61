package load

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/linksim/linksim/reports"
)

// View shows a run's progress: two live bars on a terminal (devices linked
// of the target; the action phase's time, with the figures beside it), or a
// plain line every few seconds and at each phase change elsewhere (CI logs,
// files). Update it with every Snapshot; Close it before printing anything
// else.
type View struct {
	w         io.Writer
	def       Definition
	plainEach time.Duration

	mu        sync.Mutex
	prev, cur Snapshot
	printedAt time.Duration
	phase     string
	figures   string

	p             *mpb.Progress // nil when plain
	link, actions *mpb.Bar
	msgStart      time.Duration
}

// NewView returns a view writing to out: bars when out is a terminal and
// plain is false, lines otherwise.
func NewView(out *os.File, def Definition, plain bool) *View {
	v := &View{w: out, def: def, plainEach: 5 * time.Second}
	if plain || !isTerminal(out) {
		return v
	}
	v.p = mpb.New(mpb.WithOutput(out), mpb.WithWidth(30), mpb.WithRefreshRate(250*time.Millisecond))
	v.link = v.p.AddBar(0,
		mpb.PrependDecorators(decor.Name("link     ", decor.WC{}), decor.CountersNoUnit("%d/%d devices", decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return v.linkFigures() })))
	v.actions = v.p.AddBar(int64(time.Duration(def.Duration)/time.Millisecond),
		mpb.PrependDecorators(decor.Name("actions  ", decor.WC{}), decor.Any(func(decor.Statistics) string { return v.clock() }, decor.WCSyncWidth)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return v.messageFigures() })))
	return v
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update takes the latest snapshot (of the whole run, merged over workers).
func (v *View) Update(s Snapshot) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.prev, v.cur = v.cur, s
	v.figures = figures(v.prev, s)
	if s.Phase == PhaseMessaging && v.msgStart == 0 {
		v.msgStart = s.At
	}
	if v.p == nil {
		if s.Phase != v.phase || s.At-v.printedAt >= v.plainEach {
			v.phase, v.printedAt = s.Phase, s.At
			fmt.Fprintf(v.w, "[%5.0fs] %-9s devices %d/%d connected %d  %s\n",
				s.At.Seconds(), s.Phase, s.Linked, s.Target, s.Connected, v.figures)
		}
		return
	}
	v.link.SetTotal(int64(s.Target), false)
	v.link.SetCurrent(int64(s.Linked))
	if s.Phase != PhaseStarting && s.Phase != PhaseLinking {
		v.link.SetTotal(-1, true)
	}
	if v.msgStart > 0 {
		v.actions.SetCurrent(int64((s.At - v.msgStart) / time.Millisecond))
	}
	if s.Phase == PhaseDone {
		v.actions.SetTotal(-1, true)
	}
}

// figures is the one-line summary of what changed from a to b.
func figures(a, b Snapshot) string {
	secs := (b.At - a.At).Seconds()
	rate := func(x, y int64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(y-x) / secs
	}
	pct := func(p float64) string {
		if d, ok := b.Recent.Percentile(reports.StepDeliver, p); ok {
			return reports.FormatDuration(d)
		}
		return "-"
	}
	s := fmt.Sprintf("sent %.0f/s delivered %.0f/s  deliver p50 %s p99 %s  errors %d dropped %d lost %d",
		rate(a.Sent, b.Sent), rate(a.Delivered, b.Delivered), pct(50), pct(99), b.Errors, b.Dropped, b.Lost)
	if b.LastError != "" && b.Errors > a.Errors {
		s += "  last error: " + b.LastError
	}
	return s
}

func (v *View) linkFigures() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return fmt.Sprintf("connected %d  errors %d", v.cur.Connected, v.cur.Errors)
}

func (v *View) clock() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	el := time.Duration(0)
	if v.msgStart > 0 {
		el = v.cur.At - v.msgStart
	}
	return fmt.Sprintf("%s/%s %s", el.Round(time.Second), time.Duration(v.def.Duration), v.cur.Phase)
}

func (v *View) messageFigures() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.figures
}

// Close ends the display (the bars' last frame stays on screen).
func (v *View) Close() {
	if v.p == nil {
		return
	}
	v.link.Abort(false)
	v.actions.Abort(false)
	v.p.Wait()
}
