package reports

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// NewStreamingRecorder returns a recorder that keeps no events: it judges
// them as they come (the ledger, the latency histograms, the timeline's
// capped events and faults, the messages-over-time series) and forgets
// each message once judged, so a long load run's memory stays bounded by
// the messages in flight (cfg.LostAfter and cfg.Retain bound how long one
// is held; see LedgerConfig). What it gives up, against NewRecorder:
//
//   - Events returns nothing and Withdraw panics: there are no events to
//     give back or take out.
//   - Sinks get events in batches, a few hundred at a time (in time order).
//   - New may be called once, when the run is over: it judges the messages
//     still held. Its cfg.Ledger is ignored (cfg here rules).
//   - Problems of a kind are listed in the order they were judged, and a
//     copy of a message forgotten is unexpected rather than duplicated.
//
// Its children (Child, ChildFor) keep nothing either: they stamp their
// scope and pass every event on.
func NewStreamingRecorder(cfg LedgerConfig) *Recorder {
	r := NewRecorder()
	t := newTally(cfg, false)
	t.latencies, t.series = NewMetrics(), &seriesTally{}
	r.stream = &streamer{seed: maphash.MakeSeed(), start: r.start, tally: t, timeline: newTimelineTally(0)}
	return r
}

// streamShards and streamBatch size the recording hot path: an event takes
// its device's shard lock only to be stamped and appended; once a shard
// holds streamBatch events, every shard is handed to the ledger in one go.
const (
	streamShards = 16
	streamBatch  = 256
)

// streamer is a streaming recorder's state.
type streamer struct {
	seed   maphash.Seed
	start  time.Time
	shards [streamShards]shard
	faults atomic.Uint64

	mu sync.Mutex // guards what follows, and hands events over one batch at a time
	// pending are events taken from the shards but newer than the last
	// batch's watermark, in time order.
	pending  []Event
	tally    *tally
	timeline *timelineTally
	sinks    []Sink
	done     bool // New has judged every message
}

type shard struct {
	mu     sync.Mutex
	events []Event
}

// add stamps e on the recorder's clock and queues it for the ledger.
func (s *streamer) add(e Event) {
	sh := &s.shards[maphash.String(s.seed, e.Device)%streamShards]
	sh.mu.Lock()
	e.At = time.Since(s.start)
	sh.events = append(sh.events, e)
	full := len(sh.events) >= streamBatch
	sh.mu.Unlock()
	// One flush at a time is enough: the others' events wait in their
	// shards for the next one. Waiting for s.mu here made devices' read
	// loops queue behind each other's flushes (hundreds of goroutines in
	// a 19,000-device load, every delivery stalled for seconds).
	if full && s.mu.TryLock() {
		s.flush()
		s.mu.Unlock()
	}
}

// flush hands the ledger every event recorded before now, in time order,
// as one recorder keeping its events would have them. Every event stamped
// before the watermark is in a shard by the time flush takes that shard
// (stamping and appending share the shard's lock), and every event stamped
// after it is newer: so the events up to the watermark are complete and
// can be merged; the newer ones wait for the next flush. s.mu must be held.
func (s *streamer) flush() {
	watermark := time.Since(s.start)
	evs := s.pending
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		evs = append(evs, sh.events...)
		clear(sh.events) // drop the strings the events held
		sh.events = sh.events[:0]
		sh.mu.Unlock()
	}
	slices.SortStableFunc(evs, byAt)
	n, _ := slices.BinarySearchFunc(evs, watermark+1, func(e Event, at time.Duration) int { return cmp.Compare(e.At, at) })
	for i := range evs[:n] {
		s.take(&evs[i])
	}
	s.pending = append(evs[:0], evs[n:]...)
}

// take judges one event. s.mu must be held.
func (s *streamer) take(e *Event) {
	if s.done {
		return
	}
	s.tally.observe(e)
	if e.Kind == KindStep {
		s.tally.latencies.RecordIn(e.Scope(), e.Name, e.Value)
	}
	s.timeline.add(e)
	for _, sink := range s.sinks {
		sink.Record(*e)
	}
}

// totals returns the counters so far: every message judged, and what is
// known of the ones still held (sent, acked, delivered; not yet lost).
func (s *streamer) totals() Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush()
	return s.tally.totals()
}

// held returns how many messages the ledger holds.
func (s *streamer) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush()
	return s.tally.held()
}

// message returns the status of a message the ledger still holds.
func (s *streamer) message(id string) (MessageStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush()
	m := s.tally.byID[id]
	if m == nil {
		return MessageStatus{}, false
	}
	return m.status(), true
}

// ledger returns the verdict so far (Recorder.Ledger).
func (s *streamer) ledger() Ledger {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush()
	l := s.tally.ledger()
	l.lookup = s.message
	return l
}

// report builds the run's report: it judges every message still held.
func (s *streamer) report(start time.Time, duration time.Duration, cfg Config) *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flush()
	r := &Report{Name: cfg.Name, Start: start, Duration: duration, Relay: cfg.Relay, Metrics: NewMetrics()}
	if !s.done {
		s.tally.finish(duration)
		s.done = true
	}
	r.Ledger = s.tally.ledger()
	r.ScenarioTotals = s.tally.scenarioTotals()
	r.Metrics.Merge(s.tally.latencies)
	r.Timeline = s.timeline.timeline(duration, s.tally.series.series(duration))
	return r
}
