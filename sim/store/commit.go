package store

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// maxGroup bounds how many writes share one transaction.
const maxGroup = 1000

// errTrySolo tells a writer that its function failed inside a group and
// must run again alone, so its error is not mixed with the others' writes.
var errTrySolo = errors.New("store: run the write alone")

// committer is the store's group commit. Writers hand it functions; it runs
// every function that queued while the previous transaction committed in
// one new transaction, so one disk sync serves them all. Unlike bbolt's
// DB.Batch it never waits for company: a lone writer commits at once (no
// timer added to its latency), and under load the groups form by
// themselves, as large as the sync is slow.
type committer struct {
	db   *bolt.DB
	reqs chan commitReq
	done chan struct{}

	// mu is held (shared) by every write in progress and (exclusively) by
	// close, so that no write sends on a closed channel.
	mu     sync.RWMutex
	closed bool
}

type commitReq struct {
	fn  func(*bolt.Tx) error
	err chan error
}

func newCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, reqs: make(chan commitReq, maxGroup), done: make(chan struct{})}
	go c.run()
	return c
}

// write runs fn in a group transaction and returns once it is durable. As
// with DB.Batch, fn may run more than once (when another function of its
// group fails), so it must only write to the transaction and to variables
// it resets on each run.
func (c *committer) write(fn func(*bolt.Tx) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return berrors.ErrDatabaseNotOpen
	}
	req := commitReq{fn: fn, err: make(chan error, 1)}
	c.reqs <- req
	err := <-req.err
	if err == errTrySolo {
		err = c.db.Update(fn)
	}
	return err
}

// close stops the committer once the writes in progress are done.
func (c *committer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.reqs)
		<-c.done
	}
}

func (c *committer) run() {
	defer close(c.done)
	for first := range c.reqs {
		group := []commitReq{first}
	more:
		for len(group) < maxGroup {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break more
				}
				group = append(group, r)
			default:
				break more
			}
		}
		c.commit(group)
	}
}

// commit runs a group in one transaction. A function that fails is taken
// out and told to run alone; the rest run again without it.
func (c *committer) commit(group []commitReq) {
	for len(group) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, r := range group {
				if err := safeCall(r.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			group[failed].err <- errTrySolo
			group = append(group[:failed], group[failed+1:]...)
			continue
		}
		for _, r := range group {
			r.err <- err
		}
		return
	}
}

// safeCall turns a panic in fn into an error, so that one bad write does not
// take the others (or the committer) down.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errors.New("store: panic in write")
		}
	}()
	return fn(tx)
}
