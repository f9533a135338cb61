package cluster

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/linksim/linksim/sim/store"
)

// accountCache keeps the accounts a node read, so that a send checks its
// device lists without a request to NATS. Every node watches the accounts
// bucket (keys only) and forgets an account when anybody writes it; the
// next read fills it again from the bucket. The cache trails the bucket by
// the watch's delay (sub-millisecond on one machine; up to seconds while
// the watch's server fails over), so only checks that fall back to a
// fresh read on a mismatch use it (see Node.cachedAccount).
//
// A read that started before a write must not fill the cache with what it
// read: each forget is stamped with a clock, and a fill is kept only if
// its key was not forgotten since the read began.
//
// Without a watch running, the cache holds nothing: writes would not reach
// it (see Node.followAccounts).
type accountCache struct {
	mu      sync.Mutex
	clock   uint64
	reset   uint64 // fills that began before this clock are dropped
	watched bool   // a watch forgets what is written
	m       map[string]cachedAccount
}

type cachedAccount struct {
	a        account
	ok       bool   // a is the account; else a forget stamped at forgot
	forgotAt uint64 // clock of the last forget
}

// maxCachedAccounts bounds the cache; past it, the cache starts afresh.
const maxCachedAccounts = 200_000

// now is the clock to pass to fill for a read about to begin.
func (c *accountCache) now() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clock
}

func (c *accountCache) get(key string) (account, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key] // nil while no watch runs
	return e.a, e.ok
}

// fill keeps a, read from the bucket by a read that began at clock since,
// unless key was forgotten or the cache reset meanwhile.
func (c *accountCache) fill(key string, a account, since uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if since < c.reset || !c.watched {
		return
	}
	if e, ok := c.m[key]; ok && e.forgotAt > since {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedAccounts {
		c.m = map[string]cachedAccount{}
		c.reset = c.clock + 1 // the forgets kept in the old map are gone
	}
	c.m[key] = cachedAccount{a: a, ok: true}
}

func (c *accountCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clock++
	if c.m == nil || len(c.m) >= maxCachedAccounts {
		c.m = map[string]cachedAccount{}
		c.reset = c.clock
	}
	c.m[key] = cachedAccount{forgotAt: c.clock}
}

// forgetAll empties the cache: the watch may have missed writes (the node
// was cut off from NATS).
func (c *accountCache) forgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.empty()
}

// setWatched empties the cache and says whether a watch runs from now on.
func (c *accountCache) setWatched(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.empty()
	c.watched = on
}

// empty drops every account and every fill under way; c.mu is held.
func (c *accountCache) empty() {
	c.clock++
	c.reset = c.clock
	c.m = nil
}

// watchAccounts starts forgetting every account written from now on; it
// ends when ctx does.
func (n *Node) watchAccounts(ctx context.Context) error {
	w, err := n.kv.accounts.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		return fmt.Errorf("watching accounts: %w", err)
	}
	n.accounts.setWatched(true)
	go n.followAccounts(ctx, w)
	return nil
}

// followAccounts forgets every account written, for as long as ctx lasts.
// The watch may end before (nats.go drops a watch whose consumer it cannot
// make again while a stream has no leader, and says so only to an error
// handler): the cache then holds nothing until a new watch runs, since
// writes made meanwhile reach no watch.
func (n *Node) followAccounts(ctx context.Context, w jetstream.KeyWatcher) {
	for {
		current := w // w itself is written again below, while EndAccountWatch may read this
		n.accountWatch.Store(&current)
		for e := range w.Updates() {
			if e != nil {
				n.accounts.forget(e.Key())
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return
		}
		n.accounts.setWatched(false)
		n.log.Warn("watch of the accounts bucket ended; device lists are read afresh until it runs again")
		err := retryAll(ctx, func(context.Context) (err error) {
			w, err = n.kv.accounts.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly()) // lives as long as ctx
			return err
		})
		if err != nil {
			return // ctx ended
		}
		n.accounts.setWatched(true)
		n.log.Info("watching the accounts bucket again")
	}
}

// cachedAccount is account from the node's cache, which may trail writes
// made through other nodes by a moment. A missing account is not cached.
func (n *Node) cachedAccount(ctx context.Context, user string) (account, error) {
	key := enc(user)
	if a, ok := n.accounts.get(key); ok {
		return a, nil
	}
	since := n.accounts.now()
	a, _, err := n.account(ctx, user)
	if err != nil {
		return account{}, err
	}
	n.accounts.fill(key, a, since)
	return a, nil
}

// updateAccount is update on the user's account; this node forgets it at
// once, so that its next read sees the write without waiting for the watch.
func (n *Node) updateAccount(ctx context.Context, user string, fn func(*account) error) error {
	key := enc(user)
	defer n.accounts.forget(key)
	return update(ctx, n, n.kv.accounts, key, false, fn)
}

// CachedListedIDs is ListedIDs from the node's cache, for checks that call
// ListedIDs again before they act on a mismatch (store.ListCache).
func (n *Node) CachedListedIDs(user string) ([]uint32, error) {
	ctx, cancel := n.ctx()
	defer cancel()
	a, err := n.cachedAccount(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("cluster: devices of %s: %w", user, err)
	}
	return a.listed(), nil
}

var _ store.ListCache = (*Node)(nil)
