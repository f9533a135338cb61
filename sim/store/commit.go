package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// maxGroup bounds how many writes share one transaction.
const maxGroup = 1000

// lazyWait is how long lazy writes (deletes of acknowledged items) wait for
// a durable write to ride along with before they commit on their own.
const lazyWait = 20 * time.Millisecond

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
	// lazy are writes nobody waits for: they join the next transaction,
	// or commit alone lazyWait after a kick.
	lazy lazyWriter
	kick chan struct{} // capacity 1: lazy writes are pending

	commits, writes atomic.Int64 // group transactions committed, the writes in them

	// txMu is held around each transaction, with its OnCommit functions,
	// so that those of a write run alone follow those of the group
	// before it: the queue index (queue.go) learns items in seq order.
	txMu sync.Mutex

	// mu is held (shared) by every write in progress and (exclusively) by
	// close, so that no write sends on a closed channel.
	mu     sync.RWMutex
	closed bool
}

type commitReq struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// lazyWriter is a source of writes that may be lost in a crash. begin
// takes what is pending (false: nothing), apply writes it (it may run
// more than once, on fresh transactions), and end says whether it
// committed; what did not is taken again by the next begin.
type lazyWriter interface {
	begin() bool
	apply(tx *bolt.Tx) error
	end(committed bool)
}

// noLazyWrites is the lazyWriter of a file without lazy writes.
type noLazyWrites struct{}

func (noLazyWrites) begin() bool          { return false }
func (noLazyWrites) apply(*bolt.Tx) error { return nil }
func (noLazyWrites) end(bool)             {}

func newCommitter(db *bolt.DB, lazy lazyWriter) *committer {
	c := &committer{db: db, reqs: make(chan commitReq, maxGroup), done: make(chan struct{}),
		lazy: lazy, kick: make(chan struct{}, 1)}
	go c.run()
	return c
}

// kickLazy says that lazy writes are pending.
func (c *committer) kickLazy() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
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
		err = c.update(fn)
	}
	return err
}

// update runs fn in a transaction of its own, in turn with the others.
func (c *committer) update(fn func(*bolt.Tx) error) error {
	c.txMu.Lock()
	defer c.txMu.Unlock()
	return c.db.Update(fn)
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
	defer c.commit(nil) // lazy writes still pending at close
	for {
		var group []commitReq
		select {
		case r, ok := <-c.reqs:
			if !ok {
				return
			}
			group = append(group, r)
		case <-c.kick:
			wait := time.NewTimer(lazyWait)
			select {
			case r, ok := <-c.reqs:
				wait.Stop()
				if !ok {
					return
				}
				group = append(group, r)
			case <-wait.C:
			}
		}
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

// commit runs a group, and the lazy writes pending, in one transaction. A
// function that fails is taken out and told to run alone; the rest run
// again without it.
func (c *committer) commit(group []commitReq) {
	lazy := c.lazy.begin()
	for len(group) > 0 || lazy {
		failed := -1
		err := c.update(func(tx *bolt.Tx) error {
			if lazy {
				if err := c.lazy.apply(tx); err != nil {
					return err
				}
			}
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
		if lazy {
			// Before the writers hear back, so that what they do next
			// sees the lazy writes as committed.
			c.lazy.end(err == nil)
			if err != nil {
				c.kickLazy() // try them again later
			}
		}
		if err == nil {
			c.commits.Add(1)
			c.writes.Add(int64(len(group)))
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
