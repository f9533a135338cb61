package camera

import (
	"fmt"
	"strings"
	"testing"
)

// surveySamples are the codes a web client might show: the linking payload
// at the on-screen sizes browser-notes measured (3 px per module and up) and
// a few other payloads, so one unlucky layout does not decide a rate.
func surveySamples(t testing.TB) []Sample {
	var samples []Sample
	for i, size := range []int{171, 228, 285, 300, 400} {
		text := payload
		if i%2 == 1 {
			text = fmt.Sprintf("v1,Ref%06d,%s,%s,%s", i, key(byte(10+i)), key(byte(20+i)), key(byte(30+i)))
		}
		samples = append(samples, Sample{qrImage(t, text, size), text})
	}
	return samples
}

func TestSurveyPresets(t *testing.T) {
	results := Survey(surveySamples(t), Presets())
	t.Logf("decode rate by degradation:\n%s", Table(results))

	for _, r := range results {
		if r.Wrong > 0 {
			t.Errorf("%s: %d attempts decoded to the wrong text: %v", r.Name, r.Wrong, r.Err)
		}
		// A perfect camera and mild conditions must always read the code.
		if r.Name == "perfect" || r.Name == "combined-mild" {
			if r.Rate() != 1 {
				t.Errorf("%s: decoded %d of %d, want all; e.g. %v", r.Name, r.Decoded, r.Attempts, r.Err)
			}
		}
	}
}

func TestTable(t *testing.T) {
	got := Table([]Result{{Name: "blur-1", Attempts: 4, Decoded: 3, MedianDecode: 2345678}})
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 {
		t.Fatalf("Table has %d lines, want header and one row:\n%s", len(lines), got)
	}
	for _, want := range []string{"blur-1", "4", "3", "75%", "2.35ms"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
}

func BenchmarkSurveyPreset(b *testing.B) {
	samples := surveySamples(b)
	for _, p := range Presets() {
		b.Run(p.Name, func(b *testing.B) {
			for b.Loop() {
				Survey(samples[3:4], []Preset{p}) // the 300 px sample
			}
		})
	}
}
