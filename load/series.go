package load

import (
	"context"
	"time"

	"github.com/linksim/linksim/reports"
)

// Names of the time series a load report carries.
const (
	SeriesSent      = "sent"
	SeriesDelivered = "delivered"
	SeriesP50       = "delivery p50"
	SeriesP99       = "delivery p99"
	SeriesConnected = "connected devices"
	SeriesRelayCPU  = "relay CPU"
	SeriesRelayRSS  = "relay RSS"
)

// sampler turns the tracker's successive snapshots into the report's time
// series: one point per series per progress tick, so memory grows by a few
// dozen bytes a second however busy the run is.
type sampler struct {
	sent, delivered, p50, p99, connected, cpu, rss reports.TimeSeries

	prev      Snapshot
	prevRelay relayFigures
	scrape    func(context.Context) relayFigures // nil: the relay's process is this one
}

func newSampler(scrape func(context.Context) relayFigures) *sampler {
	return &sampler{
		sent: reports.TimeSeries{Name: SeriesSent, Unit: "msg/s"}, delivered: reports.TimeSeries{Name: SeriesDelivered, Unit: "deliveries/s"},
		p50: reports.TimeSeries{Name: SeriesP50, Unit: "ms"}, p99: reports.TimeSeries{Name: SeriesP99, Unit: "ms"},
		connected: reports.TimeSeries{Name: SeriesConnected, Unit: "devices"},
		cpu:       reports.TimeSeries{Name: SeriesRelayCPU, Unit: "% of a core"}, rss: reports.TimeSeries{Name: SeriesRelayRSS, Unit: "MiB"},
		scrape: scrape,
	}
}

// add takes the snapshot of a tick.
func (s *sampler) add(ctx context.Context, snap Snapshot) {
	last := snap.LastSecond
	dt := (snap.At - s.prev.At).Seconds()
	if dt <= 0 {
		return
	}
	at := snap.At
	s.sent.Add(at, float64(snap.Sent-s.prev.Sent)/dt)
	s.delivered.Add(at, float64(snap.Delivered-s.prev.Delivered)/dt)
	s.connected.Add(at, float64(snap.Connected))
	// An interval without deliveries has no latency: no point, rather
	// than a zero that reads as "fast".
	if p, ok := last.Percentile(reports.StepDeliver, 50); ok {
		s.p50.Add(at, float64(p)/float64(time.Millisecond))
	}
	if p, ok := last.Percentile(reports.StepDeliver, 99); ok {
		s.p99.Add(at, float64(p)/float64(time.Millisecond))
	}
	if s.scrape != nil {
		if f := s.scrape(ctx); f.rss > 0 {
			if s.prevRelay.rss > 0 {
				s.cpu.Add(at, 100*(f.cpu-s.prevRelay.cpu)/dt)
			}
			s.rss.Add(at, f.rss/(1<<20))
			s.prevRelay = f
		}
	}
	s.prev = snap
}

// series returns the non-empty series.
func (s *sampler) series() []reports.TimeSeries {
	var out []reports.TimeSeries
	for _, ts := range []reports.TimeSeries{s.sent, s.delivered, s.p50, s.p99, s.connected, s.cpu, s.rss} {
		if len(ts.Points) > 0 {
			out = append(out, ts)
		}
	}
	return out
}
