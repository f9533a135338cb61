package reports

import (
	"hash/maphash"
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
//   - Sinks get events in batches, in time order per device, not across
//     devices.
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
	r.stream = &streamer{seed: maphash.MakeSeed(), tally: t, timeline: newTimelineTally(0)}
	return r
}

// streamShards and streamBatch size the recording hot path: an event takes
// its device's shard lock only to be stamped and appended; every
// streamBatch events the shard is handed to the ledger in one go. Events of
// one device stay in order, which is what the ledger's checks need.
const (
	streamShards = 16
	streamBatch  = 256
	// streamLag is how far behind the newest event a shard may lag before
	// another shard's flush takes it along, so that a quiet device's
	// deliveries reach the ledger long before its messages could be judged
	// lost.
	streamLag = 100 * time.Millisecond
)

// streamer is a streaming recorder's state.
type streamer struct {
	seed   maphash.Seed
	shards [streamShards]shard
	faults atomic.Uint64

	mu       sync.Mutex // guards what follows
	tally    *tally
	timeline *timelineTally
	sinks    []Sink
	done     bool // New has judged every message
}

type shard struct {
	mu      sync.Mutex
	events  []Event
	spare   []Event
	firstAt time.Duration // of events[0]
	// flushing keeps one shard's batches in order on their way to the
	// ledger.
	flushing sync.Mutex
}

// add stamps e on the clock started at start and queues it for the ledger.
func (s *streamer) add(e Event, start time.Time) {
	sh := &s.shards[maphash.String(s.seed, e.Device)%streamShards]
	sh.mu.Lock()
	e.At = time.Since(start)
	if len(sh.events) == 0 {
		sh.firstAt = e.At
	}
	sh.events = append(sh.events, e)
	full := len(sh.events) >= streamBatch
	sh.mu.Unlock()
	if full {
		s.flush(sh, e.At)
	}
}

// flush hands sh's events to the ledger, and with them those of every
// shard lagging more than streamLag behind now.
func (s *streamer) flush(sh *shard, now time.Duration) {
	s.drain(sh)
	for i := range s.shards {
		o := &s.shards[i]
		o.mu.Lock()
		lagging := len(o.events) > 0 && now-o.firstAt > streamLag
		o.mu.Unlock()
		if lagging && o.flushing.TryLock() {
			o.flushing.Unlock() // drain takes it again; a flush under way will take the events anyway
			s.drain(o)
		}
	}
}

// drain hands sh's events, in order, to the ledger.
func (s *streamer) drain(sh *shard) {
	sh.flushing.Lock()
	defer sh.flushing.Unlock()
	sh.mu.Lock()
	evs := sh.events
	sh.events, sh.spare = sh.spare[:0], nil
	sh.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	s.mu.Lock()
	for i := range evs {
		s.take(&evs[i])
	}
	s.mu.Unlock()
	clear(evs) // drop the strings the events held
	sh.mu.Lock()
	if sh.spare == nil {
		sh.spare = evs[:0]
	}
	sh.mu.Unlock()
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

// drainAll hands every queued event to the ledger.
func (s *streamer) drainAll() {
	for i := range s.shards {
		s.drain(&s.shards[i])
	}
}

// totals returns the counters so far: every message judged, and what is
// known of the ones still held (sent, acked, delivered; not yet lost).
func (s *streamer) totals() Totals {
	s.drainAll()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tally.totals()
}

// held returns how many messages the ledger holds.
func (s *streamer) held() int {
	s.drainAll()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tally.held()
}

// message returns the status of a message the ledger still holds.
func (s *streamer) message(id string) (MessageStatus, bool) {
	s.drainAll()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.tally.byID[id]
	if m == nil {
		return MessageStatus{}, false
	}
	return m.status(), true
}

// report builds the run's report: it judges every message still held.
func (s *streamer) report(start time.Time, duration time.Duration, cfg Config) *Report {
	s.drainAll()
	s.mu.Lock()
	defer s.mu.Unlock()
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
