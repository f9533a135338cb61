package relay

import (
	"fmt"

	"github.com/linksim/linksim/sim/cluster"
	"github.com/linksim/linksim/sim/wire"
)

// joinCluster opens this relay's node of a cluster on cfg.NATS (see
// Config.NATS). The relay's Noise key is the cluster's, made by the first
// node, so that devices pin one key whichever node they reach.
func joinCluster(cfg Config) (*cluster.Node, wire.KeyPair, error) {
	n, err := cluster.Open(cluster.Config{
		URLs: cfg.NATS, Replicas: cfg.Replicas, Logger: cfg.Logger,
		DedupAge: cfg.Limits.DedupAge, MaxQueuedBytes: cfg.Limits.MaxQueuedBytes,
	})
	if err != nil {
		return nil, wire.KeyPair{}, err
	}
	priv, err := n.Shared("relay-noise-key", func() ([]byte, error) {
		kp, err := wire.GenerateKey()
		return kp.Private, err
	})
	if err == nil {
		var kp wire.KeyPair
		if kp, err = keyPair(priv); err == nil {
			return n, kp, nil
		}
	}
	n.Close()
	return nil, wire.KeyPair{}, fmt.Errorf("cluster noise key: %w", err)
}
