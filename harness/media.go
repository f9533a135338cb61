package harness

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/linksim/linksim/sim/device"
)

// TempDir is a directory removed when the scenario ends, for the files it
// sends.
func (e *Env) TempDir() string { return e.t.TempDir() }

// RandomFile writes size pseudo-random bytes (seeded, so a rerun sends the
// same file) to dir/name and returns its path and SHA-256. Random bytes do
// not compress, so no layer can make the transfer look faster than it is.
func RandomFile(dir, name string, size int64, seed uint64) (string, [32]byte, error) {
	return writeFile(dir, name, func(w io.Writer) error {
		var s [32]byte
		s[0], s[1] = byte(seed), byte(seed>>8)
		_, err := io.CopyN(w, rand.NewChaCha8(s), size)
		return err
	})
}

// ImageFile writes a width×height PNG (a colour gradient, something a
// thumbnail can show) to dir/name and returns its path and SHA-256.
func ImageFile(dir, name string, width, height int) (string, [32]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		for x := range width {
			img.SetRGBA(x, y, color.RGBA{uint8(255 * x / width), uint8(255 * y / height), 128, 255})
		}
	}
	return writeFile(dir, name, func(w io.Writer) error { return png.Encode(w, img) })
}

// writeFile creates dir/name with what write writes, hashing it on the way.
func writeFile(dir, name string, write func(io.Writer) error) (string, [32]byte, error) {
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return "", [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if err := write(w); err != nil {
		return "", [32]byte{}, err
	}
	if err := w.Flush(); err != nil {
		return "", [32]byte{}, err
	}
	return path, [32]byte(h.Sum(nil)), f.Close()
}

// StoredMedia lists the relay's media store on disk: the blobs it holds
// (named by their hex SHA-256) and the sizes of uploads being received. It
// reads the layout of sim/relay (media/blobs, media/tmp under its data dir)
// and so needs a relay the harness runs.
func (e *Env) StoredMedia() (blobs []string, uploading []int64, err error) {
	dir := e.mediaDir()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs"))
	if err != nil {
		return nil, nil, fmt.Errorf("relay media store: %w", err)
	}
	for _, en := range entries {
		blobs = append(blobs, en.Name())
	}
	entries, err = os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		return nil, nil, fmt.Errorf("relay media store: %w", err)
	}
	for _, en := range entries {
		if info, err := en.Info(); err == nil {
			uploading = append(uploading, info.Size())
		}
	}
	return blobs, uploading, nil
}

// mediaDir is the relay's media store on disk. It skips the scenario on a
// relay cluster, which keeps blobs in JetStream's object store.
func (e *Env) mediaDir() string {
	e.t.Helper()
	if _, ok := e.backend.(*cluster); ok {
		e.t.Skipf("NOT RUN: needs the media store on disk of one relay; a relay cluster keeps blobs in JetStream's object store")
	}
	return filepath.Join(e.DataDir(), "media")
}

// TamperMedia flips bits of one byte in the middle of the stored blob of m,
// as a broken disk or a malicious relay would. Calling it again flips them
// back.
func (e *Env) TamperMedia(m *device.Media) error {
	path := filepath.Join(e.mediaDir(), "blobs", hex.EncodeToString(m.FileEncSHA256))
	end := e.rec.rec.Fault("tampered media blob")
	defer end()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("tamper with media: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	b := make([]byte, 1)
	at := info.Size() / 2
	if _, err := f.ReadAt(b, at); err != nil {
		return err
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, at); err != nil {
		return err
	}
	return f.Close()
}
