package camera

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Reader reads the QR code of each image, returning its text or "" where it
// read none; an error means the reader itself failed. Surveys run one
// alongside Decode to compare decoders.
type Reader func(ctx context.Context, imgs []image.Image) ([]string, error)

// Zbarimg is a Reader running the zbarimg program (Debian's zbar-tools) once
// for all the images, as PNG files in a temporary directory. It is an
// independent decoder: a code Decode misses but zbarimg reads points at
// gozxing, one both miss at the picture.
func Zbarimg(ctx context.Context, imgs []image.Image) ([]string, error) {
	bin, err := exec.LookPath("zbarimg")
	if err != nil {
		return nil, fmt.Errorf("camera: zbarimg: %w (install zbar-tools)", err)
	}
	dir, err := os.MkdirTemp("", "linksim-zbar-")
	if err != nil {
		return nil, fmt.Errorf("camera: zbarimg: %w", err)
	}
	defer os.RemoveAll(dir)
	args := []string{"--xml", "-q"}
	index := make(map[string]int, len(imgs))
	for i, img := range imgs {
		name := filepath.Join(dir, strconv.Itoa(i)+".png")
		if err := writePNG(name, img); err != nil {
			return nil, fmt.Errorf("camera: zbarimg: %w", err)
		}
		args = append(args, name)
		index[name] = i
	}
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	// zbarimg exits 4 when some image held no code: the XML still lists
	// every image.
	if ee := (*exec.ExitError)(nil); err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 4) {
		return nil, fmt.Errorf("camera: zbarimg: %w", err)
	}
	var doc struct {
		Sources []struct {
			Href    string   `xml:"href,attr"`
			Symbols []string `xml:"index>symbol>data"`
		} `xml:"source"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("camera: zbarimg: reading its XML: %w", err)
	}
	texts := make([]string, len(imgs))
	for _, s := range doc.Sources {
		if i, ok := index[s.Href]; ok && len(s.Symbols) > 0 {
			texts[i] = s.Symbols[0]
		}
	}
	return texts, nil
}

func writePNG(name string, img image.Image) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
