package camera

import (
	"fmt"
	"image"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Sample is a picture of a QR code and the text it encodes.
type Sample struct {
	Image image.Image
	Text  string
}

// Preset is a named Degradation.
type Preset struct {
	Name string
	Degradation
}

// Presets returns named degradations, each kind from mild to severe, for
// surveying how robust a QR rendering is. The number in a name is the
// setting: percent for scale and contrast, degrees for rotate and tilt, blur
// sigma in pixels, noise in 8-bit levels, JPEG quality. "perfect" and
// "combined-mild" should always decode; the last of each kind is near or
// past what gozxing reads. How far a scale preset goes depends on the
// rendering: what counts is the pixels per module left after scaling.
func Presets() []Preset {
	glare := Glare{Strength: 0.85, X: 0.4, Y: 0.4, RX: 0.3, RY: 0.2}
	return []Preset{
		{"perfect", Degradation{}},
		{"scale-75", Degradation{Scale: 0.75}},
		{"scale-50", Degradation{Scale: 0.5}},
		{"scale-33", Degradation{Scale: 0.33}},
		{"scale-25", Degradation{Scale: 0.25}},
		{"rotate-5", Degradation{Rotate: 5}},
		{"rotate-15", Degradation{Rotate: 15}},
		{"rotate-45", Degradation{Rotate: 45}},
		{"rotate-90", Degradation{Rotate: 90}},
		{"tilt-15", Degradation{Tilt: 15}},
		{"tilt-30", Degradation{Tilt: 30}},
		{"tilt-45", Degradation{Tilt: 45}},
		{"blur-1", Degradation{Blur: 1}},
		{"blur-2", Degradation{Blur: 2}},
		{"blur-3", Degradation{Blur: 3}},
		{"noise-20", Degradation{Noise: 20, Seed: 1}},
		{"noise-40", Degradation{Noise: 40, Seed: 1}},
		{"noise-80", Degradation{Noise: 80, Seed: 1}},
		{"contrast-30", Degradation{Contrast: 0.3}},
		{"contrast-10", Degradation{Contrast: 0.1}},
		{"contrast-3", Degradation{Contrast: 0.03}},
		{"glare", Degradation{Glare: glare}},
		{"glare-full", Degradation{Glare: Glare{Strength: 1, X: 0.4, Y: 0.4, RX: 0.3, RY: 0.2}}},
		{"jpeg-50", Degradation{JPEG: 50}},
		{"jpeg-10", Degradation{JPEG: 10}},
		// Mild: a steady hand close to a dim screen; the "-moderate" version
		// adds distance, which a 3 px-per-module rendering does not survive.
		{"combined-mild", Degradation{Rotate: 5, Tilt: 10, Blur: 0.5, Noise: 6, Seed: 1,
			Contrast: 0.7, Glare: Glare{Strength: 0.4, X: 0.7, Y: 0.3}, JPEG: 85}},
		{"combined-moderate", Degradation{Scale: 0.75, Rotate: 5, Tilt: 10, Blur: 0.7, Noise: 8, Seed: 1,
			Contrast: 0.7, Glare: Glare{Strength: 0.4, X: 0.7, Y: 0.3}, JPEG: 85}},
		{"combined-harsh", Degradation{Scale: 0.5, Rotate: 20, Tilt: 30, Blur: 1.2, Noise: 20, Seed: 1,
			Contrast: 0.4, Glare: Glare{Strength: 0.6, X: 0.7, Y: 0.3}, JPEG: 60}},
	}
}

// Result is how one degradation fared over a set of samples.
type Result struct {
	Name     string
	Attempts int
	// Decoded counts the attempts that returned the sample's text exactly.
	Decoded int
	// Wrong counts attempts that returned some other text: QR error
	// correction should keep this at 0, so anything else is a finding.
	Wrong int
	// MedianDecode is the median time Decode took over all attempts,
	// failed or not: what a scan costs the harness. Degrading is not timed.
	MedianDecode time.Duration
	// Err is one of the failures, to show why decoding failed; nil if none.
	Err error
}

// Rate is the fraction of attempts decoded correctly.
func (r Result) Rate() float64 {
	if r.Attempts == 0 {
		return 0
	}
	return float64(r.Decoded) / float64(r.Attempts)
}

// Survey degrades every sample with every preset and decodes the result,
// returning one Result per preset in the presets' order. For sample i the
// noise seed is the preset's Seed+i, so samples do not all meet the same
// noise pattern while the survey stays reproducible.
func Survey(samples []Sample, presets []Preset) []Result {
	results := make([]Result, 0, len(presets))
	for _, p := range presets {
		r := Result{Name: p.Name}
		times := make([]time.Duration, 0, len(samples))
		for i, s := range samples {
			d := p.Degradation
			d.Seed += int64(i)
			img := Apply(s.Image, d)
			start := time.Now()
			text, err := Decode(img)
			times = append(times, time.Since(start))
			r.Attempts++
			switch {
			case err != nil:
				r.Err = err
			case text == s.Text:
				r.Decoded++
			default:
				r.Wrong++
				r.Err = fmt.Errorf("camera: decoded %.20q…, want %.20q…", text, s.Text)
			}
		}
		r.MedianDecode = median(times)
		results = append(results, r)
	}
	return results
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	if n := len(ds); n%2 == 0 {
		return (ds[n/2-1] + ds[n/2]) / 2
	}
	return ds[len(ds)/2]
}

// Table renders results as an aligned text table, one row per degradation.
func Table(results []Result) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "degradation\tattempts\tdecoded\twrong\trate\tmedian decode\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f%%\t%s\t\n", r.Name, r.Attempts, r.Decoded, r.Wrong,
			100*r.Rate(), r.MedianDecode.Round(10*time.Microsecond))
	}
	tw.Flush()
	return b.String()
}
