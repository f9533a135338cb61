package main

import (
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/linksim/linksim/load"
)

func loadWorkerCmd() *cobra.Command {
	var w load.NATSWorker
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Join a 'linksim load --nats' run as one of its workers, from any machine",
		Long: `Join a load run over NATS as worker --id and run its share of the users:
the coordinator ('linksim load --nats URL --workers N --remote-workers M')
sends the job, gets live figures every second and the worker's report at
the end, and merges them with the other workers' as if they had run in one
process.

The worker must reach the NATS server and the relay. The coordinator sends
the relay URL it knows; when this machine reaches the relay by another
address, give it with --relay. --source picks the local address devices
dial from (each address has ~28,000 ports towards one relay address).

The NATS URL may carry credentials (nats://user:password@host:4222 or
nats://token@host:4222; tls:// for TLS); put it in $LINKSIM_NATS_URL to
keep them off the command line. With $LINKSIM_PPROF=host:port the worker
serves Go's profiles (/debug/pprof/) there. See docs/performance.md,
"Workers on other machines".`,
		Example: `  # on the coordinator's machine (it starts workers 1 and 2, waits for 3 and 4)
  linksim load --users 4000 --rate 500 --relay ws://10.0.0.5:8080/ws \
      --nats nats://10.0.0.5:4222 --workers 4 --remote-workers 2

  # on each other machine
  linksim load worker --nats nats://10.0.0.5:4222 --id 3 --source 10.0.0.7
  LINKSIM_NATS_URL=nats://load:secret@10.0.0.5:4222 linksim load worker --id 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if w.URL == "" {
				w.URL = os.Getenv("LINKSIM_NATS_URL")
			}
			if w.URL == "" {
				return errors.New("--nats URL (or $LINKSIM_NATS_URL): the NATS server the coordinator uses")
			}
			if w.ID < 1 {
				return errors.New("--id K: which worker of the run this is, from 1")
			}
			stop, err := workerProfiles()
			if err != nil {
				return err
			}
			defer stop()
			return load.ServeNATSWorker(cmd.Context(), w)
		},
	}
	f := cmd.Flags()
	f.StringVar(&w.URL, "nats", "", "the NATS server of the run, like nats://10.0.0.5:4222 (default $LINKSIM_NATS_URL)")
	f.IntVar(&w.ID, "id", 0, "which worker of the run this is, 1 to --workers (required)")
	f.StringVar(&w.Run, "run", "", `the run's name on the NATS server, as the coordinator's --nats-run (default "load")`)
	f.StringVar(&w.Relay, "relay", "", "the relay's ws:// URL as this machine reaches it (default: the one the coordinator sends)")
	f.StringVar(&w.Source, "source", "", "local IP address devices dial the relay from (default: the system's choice)")
	f.DurationVar(&w.JoinTimeout, "join-timeout", time.Minute, "how long to wait for the coordinator to hand out this worker's job")
	return cmd
}
