package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
)

// Session is a TB for runs outside `go test` (the CLI, load runs): it keeps
// cleanups and temp dirs, writes logs to a writer, and turns Fatalf into a
// failure that Run returns.
type Session struct {
	log io.Writer
	ctx context.Context

	mu       sync.Mutex
	cleanups []func()
	failure  error
	failed   bool
}

// SkipError is what Run returns for a run that called Skipf: not passed,
// not failed, and said so.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// NewSession returns a session logging to log (nil: discard).
func NewSession(log io.Writer) *Session {
	if log == nil {
		log = io.Discard
	}
	return &Session{log: log, ctx: context.Background()}
}

// WithContext makes ctx the session's Context and returns s: a run that
// ends ctx (Ctrl-C) also stops what the harness is starting for it, such as
// a relay container.
func (s *Session) WithContext(ctx context.Context) *Session {
	s.ctx = ctx
	return s
}

// Context is the session's context, as testing.T's: Background unless
// WithContext set one.
func (s *Session) Context() context.Context { return s.ctx }

// Run calls fn on its own goroutine, as `go test` runs a test, so Fatalf can
// stop it; it returns the failure, then runs the cleanups, last first.
func (s *Session) Run(fn func()) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A panicking scenario fails, like a test; it must not take the
		// run, its report and the other scenarios' cleanups with it.
		defer func() {
			if p := recover(); p != nil {
				s.mu.Lock()
				if s.failure == nil {
					s.failure = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
				}
				s.mu.Unlock()
			}
		}()
		fn()
	}()
	<-done
	s.mu.Lock()
	cleanups := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure
}

func (s *Session) Helper() {}

// Fail marks the run failed without stopping it, as testing.T.Fail does:
// cleanups then keep artifacts.
func (s *Session) Fail() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = true
}

// Failed reports whether the run failed.
func (s *Session) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed || s.failure != nil && !isSkip(s.failure)
}

func isSkip(err error) bool {
	_, ok := err.(*SkipError)
	return ok
}

func (s *Session) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *Session) Logf(format string, args ...any) {
	fmt.Fprintf(s.log, format+"\n", args...)
}

// Fatalf records the failure and stops the calling goroutine, which must be
// the one Run started.
func (s *Session) Fatalf(format string, args ...any) {
	s.mu.Lock()
	if s.failure == nil {
		s.failure = fmt.Errorf(format, args...)
	}
	s.mu.Unlock()
	runtime.Goexit()
}

// Skipf records why the run cannot happen here and stops the calling
// goroutine, which must be the one Run started.
func (s *Session) Skipf(format string, args ...any) {
	s.mu.Lock()
	if s.failure == nil {
		s.failure = &SkipError{Reason: fmt.Sprintf(format, args...)}
	}
	s.mu.Unlock()
	runtime.Goexit()
}

// TempDir makes a directory removed at cleanup.
func (s *Session) TempDir() string {
	dir, err := os.MkdirTemp("", "linksim-")
	if err != nil {
		s.Fatalf("temp dir: %v", err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
