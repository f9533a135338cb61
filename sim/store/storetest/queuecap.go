package storetest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/linksim/linksim/sim/store"
)

// CheckQueueCap checks a store opened with its queues capped at capBytes
// (at least 4 KiB): items of 1,000 bytes go into one device's queue until
// Enqueue fails with a *store.QueueFullError naming it, about capBytes
// later, and room returns once the device acks.
func CheckQueueCap(s store.Store, capBytes int64) error {
	c := &checker{s: s, run: newRun()}
	c.queueCap(capBytes)
	if len(c.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(c.errs, "\n"))
}

func (c *checker) queueCap(capBytes int64) {
	sender, full := c.user("20"), c.user("21")
	a, ok1 := c.account(sender, 0)
	b, ok2 := c.account(full, 0)
	if !ok1 || !ok2 {
		return
	}
	item := func(i int) store.Batch {
		d := delivery(a.Address, fmt.Sprint("cap", i))
		d.GetMessage().Ciphertext = make([]byte, 1000)
		return store.Batch{Sender: a.Address, UnixMs: 1, Items: []store.Item{{To: b.Address, Delivery: d}}}
	}
	var seqs []uint64
	for i := 0; ; i++ {
		res, err := c.s.Enqueue(item(i))
		var qf *store.QueueFullError
		if errors.As(err, &qf) {
			if !errors.Is(err, store.ErrQueueFull) || qf.To != b.Address {
				c.errorf("queue full error %v: want ErrQueueFull naming %s", err, b.Address)
			}
			break
		}
		if err != nil {
			c.errorf("enqueue item %d of 1,000 bytes under the cap: %v", i, err)
			return
		}
		seqs = append(seqs, res.Seqs[0])
		if int64(i)*1000 > capBytes {
			c.errorf("%d items of 1,000 bytes queued under a cap of %d bytes", i+1, capBytes)
			return
		}
	}
	if min := capBytes/1100 - 1; int64(len(seqs)) < min {
		c.errorf("only %d items of 1,000 bytes fit under a cap of %d bytes, want %d", len(seqs), capBytes, min)
	}
	if n, err := c.s.Len(b.Address); err != nil || n != len(seqs) {
		c.errorf("queue length after the refusal = %d (%v), want %d: a refused item is not queued", n, err, len(seqs))
	}
	if _, err := c.s.Ack(b.Address, seqs[:2]); err != nil {
		c.errorf("ack 2 items: %v", err)
	}
	if _, err := c.s.Enqueue(item(-1)); err != nil {
		c.errorf("enqueue after the device acked 2 items: %v, want room again", err)
	}
	if _, err := c.s.Read(b.Address, 0, 1); err != nil {
		c.errorf("read the full queue: %v", err)
	}
}
