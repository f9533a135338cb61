package camera

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"image"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
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

var (
	surveyPayloads = flag.Int("camera.payloads", 4,
		"real-shaped payloads per preset in TestSurveyRealShaped (`make survey-camera` reads 100)")
	surveyPresets = flag.String("camera.presets", "",
		"a regular expression: TestSurveyRealShaped runs only the presets whose names it matches")
)

// realShaped returns n linking payloads shaped as docs/protocol.md §10
// makes them: v1, a 16-byte ref in unpadded base64url, then keys of 32, 33
// and 32 bytes in padded standard base64. They are random but the same on
// every run.
func realShaped(n int) []string {
	rng := rand.New(rand.NewPCG(13, 4))
	random := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Join([]string{"v1", base64.RawURLEncoding.EncodeToString(random(16)),
			base64.StdEncoding.EncodeToString(random(32)), base64.StdEncoding.EncodeToString(random(33)),
			base64.StdEncoding.EncodeToString(random(32))}, ",")
	}
	return out
}

// appImage renders text as the web app draws it (webclient/qrcanvas):
// error correction M, a 4-module white quiet zone, module pixels per module.
func appImage(t testing.TB, text string, module int) image.Image {
	t.Helper()
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		t.Fatalf("encode QR: %v", err)
	}
	bits := q.Bitmap() // with its 4-module border
	img := image.NewGray(image.Rect(0, 0, len(bits)*module, len(bits)*module))
	for y, row := range bits {
		for x, dark := range row {
			v := uint8(255)
			if dark {
				v = 0
			}
			for py := y * module; py < (y+1)*module; py++ {
				for px := x * module; px < (x+1)*module; px++ {
					img.Pix[py*img.Stride+px] = v
				}
			}
		}
	}
	return img
}

// TestSurveyRealShaped reads real-shaped linking payloads, drawn as the web
// app draws them (6 px per module, and 5 in narrow windows), through every
// preset with Decode and with zbarimg. It logs the table that
// docs/performance.md quotes; `make survey-camera` runs it over 100
// payloads.
func TestSurveyRealShaped(t *testing.T) {
	var samples []Sample
	for i, text := range realShaped(*surveyPayloads) {
		samples = append(samples, Sample{appImage(t, text, 6-i%2), text})
	}
	match, err := regexp.Compile(*surveyPresets)
	if err != nil {
		t.Fatalf("-camera.presets: %v", err)
	}
	presets := slices.DeleteFunc(Presets(), func(p Preset) bool { return !match.MatchString(p.Name) })
	results, err := SurveyAgainst(context.Background(), samples, presets, Zbarimg)
	if err != nil {
		t.Fatal(err) // zbar-tools missing: the error says to install it
	}
	t.Logf("%d real-shaped payloads per preset:\n%s", len(samples), Table(results))
	for _, r := range results {
		if r.Wrong > 0 || r.OtherWrong > 0 {
			t.Errorf("%s: %d misreads by Decode (%v), %d by zbarimg", r.Name, r.Wrong, r.Err, r.OtherWrong)
		}
		// Both decoders must read what a steady hand sees; that zbarimg
		// does also proves the survey hands it the right images.
		if r.Name == "perfect" || r.Name == "combined-mild" {
			if r.Rate() != 1 || r.OtherRate() != 1 {
				t.Errorf("%s: Decode read %d, zbarimg %d of %d; want all; e.g. %v", r.Name, r.Decoded, r.Other, r.Attempts, r.Err)
			}
		}
	}
}
