package reports

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry for every step: 1µs to 1h at 3 significant digits, so a
// QR decode and a reconnect after a long outage share one scale and stay
// within 0.1%.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(time.Hour)
	histDigits  = 3
)

// Metrics holds one latency histogram per step name for the whole run, and
// the same per scenario (see RecordIn and scope.go). It is safe for
// concurrent use and its zero value is empty and ready; methods that only
// read also work on a nil *Metrics.
type Metrics struct {
	mu     sync.Mutex
	steps  map[string]*hdr.Histogram
	scopes map[string]*scoped // by scenario name
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics { return &Metrics{} }

// Summary is a step's distribution in numbers.
type Summary struct {
	Step  string        `json:"-"`
	Count int64         `json:"count"`
	Min   time.Duration `json:"min_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
	Mean  time.Duration `json:"mean_ns"`
}

// Record adds one observation of step. Values outside 0..1h are clamped to
// the range rather than dropped, so a count always matches what happened.
// The observation belongs to no scenario; see RecordIn.
func (m *Metrics) Record(step string, d time.Duration) { m.RecordIn(Scope{}, step, d) }

// hist returns step's run-wide histogram, creating it. m.mu must be held.
func (m *Metrics) hist(step string) *hdr.Histogram {
	if m.steps == nil {
		m.steps = make(map[string]*hdr.Histogram)
	}
	return histIn(m.steps, step)
}

// histIn returns steps[step], creating it.
func histIn(steps map[string]*hdr.Histogram, step string) *hdr.Histogram {
	h := steps[step]
	if h == nil {
		h = hdr.New(histLowest, histHighest, histDigits)
		steps[step] = h
	}
	return h
}

// Merge adds every observation in o to m, step by step: how the load runner
// combines the metrics of many runners into one distribution (percentiles of
// the union, not averages of percentiles).
func (m *Metrics) Merge(o *Metrics) {
	if o == nil || o == m {
		return
	}
	// Copy o first so two metrics merging into each other cannot deadlock.
	o.mu.Lock()
	src := cloneSteps(o.steps)
	scopes := make(map[string]*scoped, len(o.scopes))
	for name, sc := range o.scopes {
		scopes[name] = &scoped{labels: sc.labels, steps: cloneSteps(sc.steps)}
	}
	o.mu.Unlock()

	m.mu.Lock()
	defer m.mu.Unlock()
	for k, h := range src {
		m.hist(k).Merge(h)
	}
	for name, sc := range scopes {
		dst := m.scope(Scope{Scenario: name, Labels: sc.labels})
		for k, h := range sc.steps {
			histIn(dst.steps, k).Merge(h)
		}
	}
}

func cloneSteps(steps map[string]*hdr.Histogram) map[string]*hdr.Histogram {
	out := make(map[string]*hdr.Histogram, len(steps))
	for k, h := range steps {
		out[k] = h.Clone()
	}
	return out
}

// Steps returns the step names with at least one histogram, sorted.
func (m *Metrics) Steps() []string {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.steps))
}

// Summary returns step's distribution; Count is 0 for a step never recorded.
func (m *Metrics) Summary(step string) Summary {
	if m == nil {
		return Summary{Step: step}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return summarize(step, m.steps[step])
}

// Summaries returns every step's distribution, sorted by step name.
func (m *Metrics) Summaries() []Summary {
	var out []Summary
	for _, s := range m.Steps() {
		out = append(out, m.Summary(s))
	}
	return out
}

// Percentile returns the value below which p percent (0..100) of step's
// observations fall; ok is false when step has no observations.
func (m *Metrics) Percentile(step string, p float64) (d time.Duration, ok bool) {
	if m == nil {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.steps[step]
	if h == nil || h.TotalCount() == 0 {
		return 0, false
	}
	return time.Duration(h.ValueAtPercentile(p)), true
}

// equivalent reports whether a and b fall in the same bucket of step's
// histogram, i.e. are equal at its precision.
func (m *Metrics) equivalent(step string, a, b time.Duration) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.steps[step]
	return h != nil && a >= 0 && b >= 0 && a <= time.Duration(histHighest) && b <= time.Duration(histHighest) &&
		h.ValuesAreEquivalent(int64(a), int64(b))
}

// curve returns step's value at each percentile in ps, for charts.
func (m *Metrics) curve(step string, ps []float64) []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.steps[step]
	out := make([]time.Duration, len(ps))
	if h == nil {
		return out
	}
	for i, v := range h.ValueAtPercentilesSlice(ps) {
		out[i] = time.Duration(v)
	}
	return out
}

func summarize(step string, h *hdr.Histogram) Summary {
	s := Summary{Step: step}
	if h == nil || h.TotalCount() == 0 {
		return s
	}
	// The smallest positive percentile is the first sample's bucket, reported
	// like every other column as the top of its bucket, so a step whose
	// samples are all 9ms reads 9ms across the table (h.Min gives the bottom).
	v := h.ValueAtPercentilesSlice([]float64{1e-9, 50, 90, 99, 99.9})
	s.Count = h.TotalCount()
	s.Min, s.Max = time.Duration(v[0]), time.Duration(h.Max())
	s.P50, s.P90, s.P99, s.P999 = time.Duration(v[1]), time.Duration(v[2]), time.Duration(v[3]), time.Duration(v[4])
	s.Mean = time.Duration(h.Mean())
	return s
}

// stepJSON is a step in report.json: the summary for people and jq, and the
// histogram itself (HdrHistogram V2 compressed, base64, readable by every
// HdrHistogram implementation) so reports can be merged and compared.
type stepJSON struct {
	Summary
	Histogram string `json:"histogram"`
}

// MarshalJSON writes the run-wide steps as an object keyed by step name.
// The per-scenario steps go in report.json's scenario_metrics (scope.go).
func (m *Metrics) MarshalJSON() ([]byte, error) {
	out := map[string]stepJSON{}
	if m != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		var err error
		if out, err = encodeSteps(m.steps); err != nil {
			return nil, err
		}
	}
	return json.Marshal(out)
}

func encodeSteps(steps map[string]*hdr.Histogram) (map[string]stepJSON, error) {
	out := make(map[string]stepJSON, len(steps))
	for k, h := range steps {
		enc, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
		if err != nil {
			return nil, fmt.Errorf("metrics: step %q: encode histogram: %w", k, err)
		}
		out[k] = stepJSON{Summary: summarize(k, h), Histogram: string(enc)}
	}
	return out, nil
}

// UnmarshalJSON reads what MarshalJSON wrote. The histograms are the truth:
// the summaries are recomputed from them.
func (m *Metrics) UnmarshalJSON(b []byte) error {
	var in map[string]stepJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	steps, err := decodeSteps(in)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.steps = steps
	return nil
}

func decodeSteps(in map[string]stepJSON) (map[string]*hdr.Histogram, error) {
	steps := make(map[string]*hdr.Histogram, len(in))
	for k, s := range in {
		if s.Histogram == "" {
			return nil, fmt.Errorf("metrics: step %q has no histogram", k)
		}
		h, err := hdr.Decode([]byte(s.Histogram))
		if err != nil {
			return nil, fmt.Errorf("metrics: step %q: decode histogram: %w", k, err)
		}
		steps[k] = h
	}
	return steps, nil
}
