package load

import (
	"context"

	"github.com/linksim/linksim/reports"
)

// Coordinate runs def: in this process when it has one worker and no
// NATS link, else spread over workers (see workers.go and transport.go). update gets the live figures of
// the whole run every second.
func Coordinate(ctx context.Context, def Definition, opts Options, update func(Snapshot)) (*reports.Report, error) {
	def = def.Defaults()
	if err := def.Check(); err != nil {
		return nil, err
	}
	// A cluster the harness starts has its devices in workers, which dial
	// its nodes directly (nodes.go).
	if plan, _ := parseRelay(def.Relay); def.Workers <= 1 && opts.NATS.URL == "" && !plan.cluster {
		opts.Progress = update
		return Run(ctx, def, opts)
	}
	return coordinateWorkers(ctx, def, opts, update)
}
