package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress passes the run's progress lines through and, on a terminal,
// keeps a clock on the line after the last one while nothing new comes, so
// a long step (building the relay image, a slow scenario) shows it is
// alive. Elsewhere (CI logs, pipes) it adds nothing: each step's start and
// end lines are the progress.
type progress struct {
	w    io.Writer
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	since time.Time // when the last line was written
	drawn bool      // the clock is on screen
}

// newProgress writes to w; live turns the clock on, redrawn every tick.
func newProgress(w io.Writer, live bool, tick time.Duration) *progress {
	p := &progress{w: w, since: time.Now()}
	if live {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.run(tick)
	}
	return p
}

// isTerminal says whether f is a terminal that can redraw a line.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// clearLine returns to the start of the line and erases it.
const clearLine = "\r\033[K"

func (p *progress) run(tick time.Duration) {
	defer close(p.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			fmt.Fprintf(p.w, "%s      ... %s", clearLine, time.Since(p.since).Round(time.Second))
			p.drawn = true
			p.mu.Unlock()
		}
	}
}

// Write writes b after erasing the clock; the clock restarts from zero.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.erase()
	p.since = time.Now()
	return p.w.Write(b)
}

func (p *progress) erase() {
	if p.drawn {
		io.WriteString(p.w, clearLine)
		p.drawn = false
	}
}

// Close stops the clock and erases it.
func (p *progress) Close() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	<-p.done
	p.stop = nil
	p.mu.Lock()
	defer p.mu.Unlock()
	p.erase()
}
