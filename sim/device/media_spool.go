package device

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Spool keeps media bytes while a device works on them: an encrypted blob
// from its encryption to the end of its upload (a retry sends the same
// bytes again), and a download's plaintext until it verified and is handed
// out. Config.Spool chooses one; nil means DiskSpool natively and
// MemorySpool in a browser (GOOS=js), which has no file system.
type Spool interface {
	// Create returns a new, empty spool file.
	Create() (SpoolFile, error)
}

// SpoolFile is one spooled stream of bytes, written once in order and then
// read. Close discards it.
type SpoolFile interface {
	io.Writer
	io.ReaderAt
	io.Closer
}

// DiskSpool spools in temporary files in Dir ("" for the system's temp
// dir), removed on Close.
type DiskSpool struct{ Dir string }

// Create makes a temporary file in s.Dir.
func (s DiskSpool) Create() (SpoolFile, error) {
	f, err := os.CreateTemp(s.Dir, ".linksim-spool-*")
	if err != nil {
		return nil, err
	}
	return removeOnClose{f}, nil
}

// DefaultMemorySpoolMax is the largest file MemorySpool holds when its Max
// is 0: a browser tab keeps a few of these in memory at once.
const DefaultMemorySpoolMax = 64 << 20

// ErrSpoolFull is the error of a write past a MemorySpool's Max.
var ErrSpoolFull = errors.New("media too large to hold in memory")

// MemorySpool spools in memory, each file up to Max bytes (0 means
// DefaultMemorySpoolMax); larger media is refused with ErrSpoolFull.
type MemorySpool struct{ Max int64 }

// Create returns an empty in-memory file.
func (s MemorySpool) Create() (SpoolFile, error) {
	max := s.Max
	if max <= 0 {
		max = DefaultMemorySpoolMax
	}
	return &memFile{max: max}, nil
}

type memFile struct {
	buf bytes.Buffer
	max int64
}

func (f *memFile) Write(p []byte) (int, error) {
	if int64(f.buf.Len()+len(p)) > f.max {
		return 0, fmt.Errorf("%w (limit %d MiB)", ErrSpoolFull, f.max>>20)
	}
	return f.buf.Write(p)
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(f.buf.Bytes()).ReadAt(p, off)
}

func (f *memFile) Close() error {
	f.buf = bytes.Buffer{}
	return nil
}

// spool is the device's Spool.
func (d *Device) spool() Spool {
	if d.cfg.Spool != nil {
		return d.cfg.Spool
	}
	return defaultSpool(d.cfg.MediaDir)
}

// spooled reads a whole SpoolFile of n bytes and discards it on Close.
type spooled struct {
	*io.SectionReader
	f SpoolFile
}

func (s spooled) Close() error { return s.f.Close() }
