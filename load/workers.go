package load

import (
	"context"
	"errors"
	"io"

	"github.com/linksim/linksim/reports"
)

func coordinateWorkers(ctx context.Context, def Definition, opts Options, update func(Snapshot)) (*reports.Report, error) {
	return nil, errors.New("workers: not yet")
}

// ServeWorker runs one worker's job read from in, writing its messages to out.
func ServeWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	return errors.New("workers: not yet")
}
