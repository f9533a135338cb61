package reports

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTimeSeriesDrawnAndRoundTrip(t *testing.T) {
	r := sampleReport(t)
	sent := TimeSeries{Name: "sent", Unit: "msg/s"}
	conn := TimeSeries{Name: "connected", Unit: "devices"}
	for i := range 5 {
		sent.Add(time.Duration(i)*time.Second, float64(10*i)+0.5)
		conn.Add(time.Duration(i)*time.Second, float64(100+i))
	}
	r.TimeSeries = []TimeSeries{sent, conn}

	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, s := range r.TimeSeries {
		svg, ok := cutSVG(page, `<svg class="chart" data-series="`+s.Name+`"`)
		if !ok {
			t.Errorf("report.html has no chart for series %q", s.Name)
			continue
		}
		// One vertex per point, so a dropped or duplicated point shows.
		_, pts, _ := strings.Cut(svg, `<polyline class="curve" points="`)
		pts, _, _ = strings.Cut(pts, `"`)
		if n := len(strings.Fields(pts)); n != len(s.Points) {
			t.Errorf("series %q drawn with %d points, want %d", s.Name, n, len(s.Points))
		}
	}

	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.TimeSeries, r.TimeSeries) {
		t.Errorf("time series after round trip:\n got %+v\nwant %+v", got.TimeSeries, r.TimeSeries)
	}
}

func TestNoTimeSeriesNoSection(t *testing.T) {
	var buf bytes.Buffer
	r := sampleReport(t)
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `"time_series"`) {
		t.Error("a report without time series should not carry the field")
	}
	buf.Reset()
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `id="time-series"`) {
		t.Error("a report without time series should not have the section")
	}
}

// cutSVG returns the svg element that starts with open.
func cutSVG(page, open string) (string, bool) {
	i := strings.Index(page, open)
	if i < 0 {
		return "", false
	}
	svg, _, ok := strings.Cut(page[i:], "</svg>")
	return svg, ok
}
