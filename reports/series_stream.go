package reports

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// seriesChain are the bucket widths of a streaming recorder's series: each
// divides the next, so when a run outgrows maxPoints buckets, neighbours
// merge exactly into the next width. (Check's series picks from
// seriesBuckets, having every delivery at hand.)
var seriesChain = []time.Duration{
	100 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second, 10 * time.Second,
	30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour,
}

// seriesTally counts sends and deliveries per time bucket as they happen,
// with each bucket's delivery latencies in a histogram at 2 significant
// digits (27 KiB per bucket with deliveries): at most maxPoints buckets,
// however long the run.
type seriesTally struct {
	width   int // index in seriesChain
	buckets []seriesBucket
}

type seriesBucket struct {
	sent, delivered int
	latency         *hdr.Histogram // nil until a delivery
}

func (s *seriesTally) sent(at time.Duration) { s.bucket(at).sent++ }

func (s *seriesTally) delivered(at, latency time.Duration) {
	b := s.bucket(at)
	b.delivered++
	if b.latency == nil {
		b.latency = hdr.New(histLowest, histHighest, 2)
	}
	_ = b.latency.RecordValue(min(max(int64(latency), 0), histHighest)) // within range: cannot fail
}

// bucket returns the bucket holding at, coarsening the series as needed.
func (s *seriesTally) bucket(at time.Duration) *seriesBucket {
	at = max(at, 0)
	for int(at/seriesChain[s.width]) >= maxPoints && s.width < len(seriesChain)-1 {
		s.coarsen()
	}
	i := int(at / seriesChain[s.width])
	if i >= len(s.buckets) {
		s.buckets = append(s.buckets, make([]seriesBucket, i+1-len(s.buckets))...)
	}
	return &s.buckets[i]
}

// coarsen moves to the next width, merging each run of buckets it covers.
func (s *seriesTally) coarsen() {
	k := int(seriesChain[s.width+1] / seriesChain[s.width])
	s.width++
	merged := make([]seriesBucket, (len(s.buckets)+k-1)/k)
	for i, b := range s.buckets {
		m := &merged[i/k]
		m.sent += b.sent
		m.delivered += b.delivered
		switch {
		case b.latency == nil:
		case m.latency == nil:
			m.latency = b.latency
		default:
			m.latency.Merge(b.latency)
		}
	}
	s.buckets = merged
}

// series returns the buckets through duration as a Series.
func (s *seriesTally) series(duration time.Duration) Series {
	if len(s.buckets) == 0 {
		return Series{Points: []Point{}}
	}
	s.bucket(duration)
	width := seriesChain[s.width]
	pts := make([]Point, len(s.buckets))
	for i, b := range s.buckets {
		pts[i] = Point{At: time.Duration(i) * width, Sent: b.sent, Delivered: b.delivered}
		if b.latency != nil {
			pts[i].P50 = time.Duration(b.latency.ValueAtQuantile(50))
			pts[i].P99 = time.Duration(b.latency.ValueAtQuantile(99))
			pts[i].Max = time.Duration(b.latency.Max())
		}
	}
	return Series{Bucket: width, Points: pts}
}
