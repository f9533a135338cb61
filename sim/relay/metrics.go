package relay

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// metrics are the relay's Prometheus metrics, on a registry of its own so
// that several relays in one process (tests, the harness) do not collide.
type metrics struct {
	reg               *prometheus.Registry
	conns             prometheus.Gauge
	handshakeFailures prometheus.Counter
	slowCloses        prometheus.Counter
	frames            *prometheus.CounterVec
	sends             *prometheus.CounterVec
	deliveries        prometheus.Counter
	acks              prometheus.Counter
	commit            prometheus.Histogram
	pairings          *prometheus.CounterVec
	refusals          *prometheus.CounterVec // by limit (limits.go)
}

func newMetrics(st store.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "linksim_relay_connections", Help: "Open connections (after the Noise handshake).",
		}),
		handshakeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linksim_relay_handshake_failures_total", Help: "WebSockets whose Noise handshake failed.",
		}),
		slowCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linksim_relay_slow_closes_total", Help: "Connections closed because their send queue was full.",
		}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linksim_relay_frames_total", Help: "Frames by direction (in, out) and body type.",
		}, []string{"dir", "type"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linksim_relay_sends_total", Help: "Send requests by result (ok, duplicate, stale, queue_full, error).",
		}, []string{"result"}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linksim_relay_deliveries_total", Help: "Deliveries pushed to devices, redeliveries included.",
		}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "linksim_relay_acks_total", Help: "Queue items deleted by device acks.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "linksim_relay_send_commit_seconds",
			Help:    "Time to commit a Send's envelopes durably (group commit included).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. 4s
		}),
		pairings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "linksim_relay_pairings_total", Help: "Pairing scans by outcome: LINKED or the error code.",
		}, []string{"outcome"}),
		refusals: newRefusals(),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "linksim_relay_queue_depth", Help: "Items waiting in all device queues.",
	}, func() float64 { return float64(st.Depth()) })
	queuedBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "linksim_relay_queued_bytes", Help: "Bytes waiting in all device queues (at most Limits.MaxQueuedBytes per device).",
	}, func() float64 { return float64(st.QueuedBytes()) })
	m.reg.MustRegister(queuedBytes, m.conns, m.handshakeFailures, m.slowCloses, m.frames, m.sends, m.deliveries,
		m.acks, m.commit, m.pairings, m.refusals, queue,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) frame(dir string, f *pb.Frame) {
	m.frames.WithLabelValues(dir, bodyName(f)).Inc()
}

// pairOutcome counts a failed scan by its error code.
func (m *metrics) pairOutcome(err error) {
	code := pb.ErrorCode_INTERNAL
	var pe *protoErr
	if errors.As(err, &pe) {
		code = pe.code
	}
	m.pairings.WithLabelValues(code.String()).Inc()
}
