package camera

import (
	"context"
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
// sigma in pixels, noise in 8-bit levels, JPEG quality, curve degrees of
// arc, wrinkle amplitude and shadow strength in percent, motion length in
// pixels; perspective is tilt x pitch in degrees. "perfect" and
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
		{"pitch-30", Degradation{Pitch: 30}},
		{"perspective-20x20", Degradation{Tilt: 20, Pitch: 20}},
		{"perspective-35x30", Degradation{Tilt: 35, Pitch: -30}},
		{"perspective-50x40", Degradation{Tilt: -50, Pitch: 40}},
		{"curve-60", Degradation{Curve: 60}},
		{"curve-120", Degradation{Curve: 120}},
		{"curve-180", Degradation{Curve: 180}},
		{"wrinkle-0.5", Degradation{Wrinkle: Wrinkle{Amplitude: 0.005}, Seed: 1}},
		{"wrinkle-1", Degradation{Wrinkle: Wrinkle{Amplitude: 0.01}, Seed: 1}},
		{"wrinkle-2", Degradation{Wrinkle: Wrinkle{Amplitude: 0.02, Period: 0.3}, Seed: 1}},
		{"shadow-50", Degradation{Shadow: Shadow{Strength: 0.5, Angle: 30, Offset: 0.1}}},
		{"shadow-80", Degradation{Shadow: Shadow{Strength: 0.8, Angle: 30, Offset: 0.1}}},
		{"shadow-80-sharp", Degradation{Shadow: Shadow{Strength: 0.8, Angle: 120, Softness: 0.005}}},
		{"motion-3", Degradation{Motion: Motion{Length: 3, Angle: 20}}},
		{"motion-6", Degradation{Motion: Motion{Length: 6, Angle: 20}}},
		{"motion-12", Degradation{Motion: Motion{Length: 12, Angle: 20}}},
		{"jpeg-50", Degradation{JPEG: 50}},
		{"jpeg-10", Degradation{JPEG: 10}},
		// Mild: a steady hand close to a dim screen; the "-moderate" version
		// adds distance, which a 3 px-per-module rendering does not survive.
		{"combined-mild", Degradation{Rotate: 5, Tilt: 10, Blur: 0.5, Noise: 6, Seed: 1,
			Contrast: 0.7, Glare: Glare{Strength: 0.4, X: 0.7, Y: 0.3}, JPEG: 85}},
		{"combined-moderate", Degradation{Scale: 0.75, Rotate: 5, Tilt: 10, Blur: 0.7, Noise: 8, Seed: 1,
			Contrast: 0.7, Glare: Glare{Strength: 0.4, X: 0.7, Y: 0.3}, JPEG: 85}},
		// A phone held in one hand over a curved or creased code, its own
		// shadow on part of it.
		{"combined-handheld", Degradation{Tilt: 15, Pitch: -10, Curve: 40, Wrinkle: Wrinkle{Amplitude: 0.004}, Seed: 1,
			Shadow: Shadow{Strength: 0.4, Angle: 60, Offset: 0.2}, Motion: Motion{Length: 2, Angle: 80}, Noise: 6, JPEG: 85}},
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
	// Turned counts the decoded attempts read only by Decode's second try
	// on the image turned 90 degrees.
	Turned int
	// Wrong counts attempts that returned some other text: QR error
	// correction should keep this at 0, so anything else is a finding.
	Wrong int
	// Other counts the attempts the survey's other Reader (zbarimg) read
	// correctly, and OtherWrong those it misread; both 0 without one.
	Other, OtherWrong int
	// MedianDecode is the median time Decode took over all attempts,
	// failed or not: what a scan costs the harness. Degrading is not timed.
	MedianDecode time.Duration
	// Err is one of the failures, to show why decoding failed; nil if none.
	Err error
}

// Rate is the fraction of attempts decoded correctly.
func (r Result) Rate() float64 { return rate(r.Decoded, r.Attempts) }

// OtherRate is the fraction of attempts the other Reader read correctly.
func (r Result) OtherRate() float64 { return rate(r.Other, r.Attempts) }

func rate(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// Survey degrades every sample with every preset and decodes the result,
// returning one Result per preset in the presets' order. For sample i the
// seed (noise, wrinkles) is the preset's Seed+i, so samples do not all meet
// the same noise pattern while the survey stays reproducible.
func Survey(samples []Sample, presets []Preset) []Result {
	results, _ := SurveyAgainst(context.Background(), samples, presets, nil)
	return results
}

// SurveyAgainst is Survey with a second decoder: other (if not nil) reads
// the same degraded images, one call per preset, and its reads are counted
// in Result.Other. It fails only if other does.
func SurveyAgainst(ctx context.Context, samples []Sample, presets []Preset, other Reader) ([]Result, error) {
	results := make([]Result, 0, len(presets))
	for _, p := range presets {
		r := Result{Name: p.Name}
		times := make([]time.Duration, 0, len(samples))
		seen := make([]image.Image, 0, len(samples))
		for i, s := range samples {
			d := p.Degradation
			d.Seed += int64(i)
			img := Apply(s.Image, d)
			seen = append(seen, img)
			start := time.Now()
			text, turned, err := decode(img)
			times = append(times, time.Since(start))
			r.Attempts++
			switch {
			case err != nil:
				r.Err = err
			case text == s.Text:
				r.Decoded++
				if turned {
					r.Turned++
				}
			default:
				r.Wrong++
				r.Err = fmt.Errorf("camera: decoded %.20q…, want %.20q…", text, s.Text)
			}
		}
		r.MedianDecode = median(times)
		if other != nil {
			texts, err := other(ctx, seen)
			if err != nil {
				return results, fmt.Errorf("camera: survey %s: %w", p.Name, err)
			}
			for i, text := range texts {
				switch text {
				case "":
				case samples[i].Text:
					r.Other++
				default:
					r.OtherWrong++
				}
			}
		}
		results = append(results, r)
	}
	return results, nil
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

// Table renders results as an aligned text table, one row per degradation;
// the other reader's columns show when any result has reads from one.
func Table(results []Result) string {
	withOther := slices.ContainsFunc(results, func(r Result) bool { return r.Other+r.OtherWrong > 0 })
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "degradation\tattempts\tdecoded\tturned\twrong\trate\tmedian decode\t")
	if withOther {
		fmt.Fprint(tw, "other\tother wrong\tother rate\t")
	}
	fmt.Fprintln(tw)
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.0f%%\t%s\t", r.Name, r.Attempts, r.Decoded, r.Turned, r.Wrong,
			100*r.Rate(), r.MedianDecode.Round(10*time.Microsecond))
		if withOther {
			fmt.Fprintf(tw, "%d\t%d\t%.0f%%\t", r.Other, r.OtherWrong, 100*r.OtherRate())
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return b.String()
}
