package cluster

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// preKeySet is a device's one-time prekeys, ascending by id, kept as one
// value so that taking one is a single compare-and-set.
type preKeySet struct {
	Keys []preKey `json:"keys"`
}

type preKey struct {
	ID  uint32 `json:"id"`
	Pub []byte `json:"pub"`
}

// add stores prekeys up to max, skipping ids it has.
func (s *preKeySet) add(prekeys []*pb.PreKey, max int) {
	for _, pk := range prekeys {
		if len(s.Keys) >= max {
			break
		}
		i, found := slices.BinarySearchFunc(s.Keys, pk.GetId(), func(k preKey, id uint32) int { return cmp.Compare(k.ID, id) })
		if found {
			continue
		}
		s.Keys = slices.Insert(s.Keys, i, preKey{ID: pk.GetId(), Pub: pk.GetPublicKey()})
	}
}

func (n *Node) AddPreKeys(a store.Address, prekeys []*pb.PreKey, max int) (int, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	var count int
	err := update(ctx, n.kv.prekeys, devKey(a), false, func(s *preKeySet) error {
		s.add(prekeys, max)
		count = len(s.Keys)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cluster: add prekeys of %s: %w", a, err)
	}
	return count, nil
}

func (n *Node) SetSignedPreKey(a store.Address, spk *pb.SignedPreKey) error {
	ctx, cancel := n.ctx()
	defer cancel()
	err := update(ctx, n.kv.devices, devKey(a), false, func(d *store.Device) error {
		d.SignedPreKey = spk
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: set signed prekey of %s: %w", a, err)
	}
	return nil
}

func (n *Node) PreKeyCount(a store.Address) (int, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	var s preKeySet
	if _, err := getJSON(ctx, n.kv.prekeys, devKey(a), &s); err != nil {
		return 0, fmt.Errorf("cluster: prekey count of %s: %w", a, err)
	}
	return len(s.Keys), nil
}

// TakeBundles reads every device first, so that an unknown address fails
// the call before any prekey is taken; each take is then its own
// compare-and-set.
func (n *Node) TakeBundles(addrs []store.Address) ([]*pb.Bundle, []int, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	bundles, left := make([]*pb.Bundle, len(addrs)), make([]int, len(addrs))
	for i, a := range addrs {
		d, err := n.device(ctx, a)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: take bundles: %s: %w", a, err)
		}
		bundles[i] = &pb.Bundle{
			Address:        &pb.Address{User: a.User, Device: a.Device},
			RegistrationId: d.RegistrationID,
			IdentityKey:    d.IdentityKey,
			SignedPrekey:   d.SignedPreKey,
		}
	}
	for i, a := range addrs {
		err := update(ctx, n.kv.prekeys, devKey(a), false, func(s *preKeySet) error {
			bundles[i].Prekey = nil
			if len(s.Keys) > 0 {
				bundles[i].Prekey = &pb.PreKey{Id: s.Keys[0].ID, PublicKey: s.Keys[0].Pub}
				s.Keys = s.Keys[1:]
			}
			left[i] = len(s.Keys)
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: take bundles: %s: %w", a, err)
		}
	}
	return bundles, left, nil
}
