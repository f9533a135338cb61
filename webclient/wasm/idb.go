//go:build js && wasm

package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall/js"

	"github.com/linksim/linksim/sim/kv"
)

// idbStore is the object store the device state lives in: binary keys (the
// kv key's bytes, so IndexedDB orders them as kv does) to Uint8Array values.
const idbStore = "kv"

var errEmptyKey = errors.New("kv: empty key")

// idbKV is a kv.KV kept in IndexedDB. The whole store is read into memory
// once when it opens; reads are served from memory; every write changes
// memory and returns, and goes to IndexedDB behind, in the order written:
// all writes waiting together share one transaction, one transaction at a
// time. It is a kv.Syncer: the device syncs before it sends anything, so
// what it acknowledged to the relay survives a page reload or crash, while
// handling one message costs one commit instead of one per write (a
// decryption alone writes several keys).
type idbKV struct {
	db      js.Value
	changed func() // called after every write, for the UI to redraw

	mu      sync.Mutex
	m       map[string][]byte
	pending []idbOp
	wake    chan struct{}
	// queued counts the operations ever queued, committed those committed
	// (in order); committedCh is closed and replaced after every commit.
	queued, committed int
	committedCh       chan struct{}
	failed            error // the first commit that failed; sticky
}

type idbOp struct {
	kind  int // opPut, opDelete, opDeletePrefix
	key   string
	value []byte
}

const (
	opPut = iota
	opDelete
	opDeletePrefix
)

// openIDB opens (creating on first use) the database name and loads it.
// It must not be called from a JavaScript callback.
func openIDB(name string, changed func()) (*idbKV, error) {
	factory := global.Get("indexedDB")
	if factory.IsUndefined() || factory.IsNull() {
		return nil, errors.New("indexedDB: not available in this page")
	}
	var db js.Value
	err := catch(func() error {
		req := factory.Call("open", name, 1)
		upgrade := js.FuncOf(func(js.Value, []js.Value) any {
			db := req.Get("result")
			if !db.Get("objectStoreNames").Call("contains", idbStore).Bool() {
				db.Call("createObjectStore", idbStore)
			}
			return nil
		})
		defer upgrade.Release()
		req.Set("onupgradeneeded", upgrade)
		blocked := js.FuncOf(func(js.Value, []js.Value) any {
			console("warn", "indexedDB: opening "+name+" is blocked by another tab of this origin")
			return nil
		})
		defer blocked.Release()
		req.Set("onblocked", blocked)
		var err error
		db, err = (<-watch(req)).get()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("indexedDB %q: open: %w", name, err)
	}
	s := &idbKV{db: db, changed: changed, m: map[string][]byte{}, wake: make(chan struct{}, 1), committedCh: make(chan struct{})}
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("indexedDB %q: load: %w", name, err)
	}
	go s.writer()
	return s, nil
}

// load reads every key and value in one read-only transaction.
func (s *idbKV) load() error {
	return catch(func() error {
		st := s.db.Call("transaction", idbStore, "readonly").Call("objectStore", idbStore)
		// Both requests are made before waiting on either, so neither result
		// can arrive before its handler is set.
		keysc, valsc := watch(st.Call("getAllKeys")), watch(st.Call("getAll"))
		keys, err := (<-keysc).get()
		if err != nil {
			return err
		}
		vals, err := (<-valsc).get()
		if err != nil {
			return err
		}
		n := keys.Length()
		if vals.Length() != n {
			return fmt.Errorf("%d keys but %d values", n, vals.Length())
		}
		for i := range n {
			s.m[string(goBytes(keys.Index(i)))] = goBytes(vals.Index(i))
		}
		return nil
	})
}

// Len is how many keys were loaded or written since.
func (s *idbKV) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *idbKV) Get(key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, false, nil
	}
	return slices.Clone(v), true, nil
}

func (s *idbKV) Put(key string, value []byte) error {
	if key == "" {
		return errEmptyKey
	}
	v := append([]byte{}, value...)
	return s.write([]idbOp{{kind: opPut, key: key, value: v}}, func() { s.m[key] = v })
}

// PutBatch puts every entry in one IndexedDB transaction (kv.Batcher): the
// writer commits whatever is queued together, and all of these are queued
// at once.
func (s *idbKV) PutBatch(entries []kv.Entry) error {
	ops := make([]idbOp, len(entries))
	for i, e := range entries {
		if e.Key == "" {
			return errEmptyKey
		}
		ops[i] = idbOp{kind: opPut, key: e.Key, value: append([]byte{}, e.Value...)}
	}
	return s.write(ops, func() {
		for _, op := range ops {
			s.m[op.key] = op.value
		}
	})
}

func (s *idbKV) Delete(key string) error {
	return s.write([]idbOp{{kind: opDelete, key: key}}, func() { delete(s.m, key) })
}

func (s *idbKV) DeletePrefix(prefix string) error {
	return s.write([]idbOp{{kind: opDeletePrefix, key: prefix}}, func() {
		for k := range s.m {
			if strings.HasPrefix(k, prefix) {
				delete(s.m, k)
			}
		}
	})
}

func (s *idbKV) Scan(prefix string, fn func(key string, value []byte) error) error {
	type entry struct {
		k string
		v []byte
	}
	var snap []entry
	s.mu.Lock()
	for k, v := range s.m {
		if strings.HasPrefix(k, prefix) {
			snap = append(snap, entry{k, slices.Clone(v)})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(snap, func(a, b entry) int { return strings.Compare(a.k, b.k) })
	for _, e := range snap {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// write applies a change to memory and queues its operations for
// IndexedDB in one step, so the queue's order is the order of the changes
// and the operations of one change share a transaction. It does not wait
// for the commit (Sync does); it fails only once a commit has failed.
func (s *idbKV) write(ops []idbOp, apply func()) error {
	s.mu.Lock()
	if err := s.failed; err != nil {
		s.mu.Unlock()
		return fmt.Errorf("indexedDB: %w", err)
	}
	apply()
	s.pending = append(s.pending, ops...)
	s.queued += len(ops)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.changed()
	return nil
}

// Sync waits until every write made before it has committed (kv.Syncer).
// It must not be called from a JavaScript callback.
func (s *idbKV) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for target := s.queued; s.committed < target && s.failed == nil; {
		ch := s.committedCh
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	if s.failed != nil {
		return fmt.Errorf("indexedDB: %w", s.failed)
	}
	return nil
}

// writer commits the queued changes, all that are waiting in one
// transaction, one transaction at a time.
func (s *idbKV) writer() {
	for range s.wake {
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		err := s.commit(batch)
		if err != nil {
			console("error", fmt.Sprintf("indexedDB: committing %d changes: %v", len(batch), err))
		}
		s.mu.Lock()
		s.committed += len(batch)
		if err != nil && s.failed == nil {
			s.failed = err
		}
		close(s.committedCh)
		s.committedCh = make(chan struct{})
		s.mu.Unlock()
	}
}

func (s *idbKV) commit(batch []idbOp) error {
	return catch(func() error {
		tx := s.db.Call("transaction", idbStore, "readwrite")
		done := watchTx(tx)
		st := tx.Call("objectStore", idbStore)
		for _, op := range batch {
			switch op.kind {
			case opPut:
				st.Call("put", jsBytes([]byte(op.value)), jsBytes([]byte(op.key)))
			case opDelete:
				st.Call("delete", jsBytes([]byte(op.key)))
			case opDeletePrefix:
				if op.key == "" {
					st.Call("clear")
				} else {
					st.Call("delete", prefixRange(op.key))
				}
			}
		}
		return <-done
	})
}

// prefixRange is the key range holding exactly the keys that start with a
// non-empty prefix: [prefix, the first byte string after all such keys).
func prefixRange(prefix string) js.Value {
	keyRange := global.Get("IDBKeyRange")
	lower := []byte(prefix)
	upper := slices.Clone(lower)
	for len(upper) > 0 && upper[len(upper)-1] == 0xff {
		upper = upper[:len(upper)-1]
	}
	if len(upper) == 0 {
		// The prefix is all 0xff bytes: every greater key starts with it.
		return keyRange.Call("lowerBound", jsBytes(lower))
	}
	upper[len(upper)-1]++
	return keyRange.Call("bound", jsBytes(lower), jsBytes(upper), false, true)
}

// result is the outcome of an IndexedDB request.
type result struct {
	v   js.Value
	err error
}

func (r result) get() (js.Value, error) { return r.v, r.err }

// watch returns a channel that gets the request's result or error. The
// handlers only hand the outcome over; the caller waits on its goroutine.
func watch(req js.Value) <-chan result {
	ch := make(chan result, 1)
	settle(req, ch, map[string]func() result{
		"onsuccess": func() result { return result{v: req.Get("result")} },
		"onerror": func() result {
			if err := domError(req.Get("error")); err != nil {
				return result{err: err}
			}
			return result{err: errors.New("request failed")}
		},
	})
	return ch
}

// watchTx returns a channel that gets nil when the transaction commits, or
// why it was aborted (a failed request aborts its transaction).
func watchTx(tx js.Value) <-chan error {
	ch := make(chan error, 1)
	settle(tx, ch, map[string]func() error{
		"oncomplete": func() error { return nil },
		"onabort": func() error {
			if err := domError(tx.Get("error")); err != nil {
				return fmt.Errorf("transaction aborted: %w", err)
			}
			return errors.New("transaction aborted")
		},
	})
	return ch
}

// settle sets one handler per event on target; the first event to fire
// sends its outcome to ch and removes and frees every handler.
func settle[T any](target js.Value, ch chan T, outcomes map[string]func() T) {
	var funcs []js.Func
	for event, outcome := range outcomes {
		f := js.FuncOf(func(js.Value, []js.Value) any {
			select {
			case ch <- outcome():
			default:
			}
			for e := range outcomes {
				target.Set(e, js.Null())
			}
			for _, f := range funcs {
				f.Release()
			}
			return nil
		})
		funcs = append(funcs, f)
		target.Set(event, f)
	}
}

// domError describes a DOMException, or is nil for none.
func domError(v js.Value) error {
	if v.IsNull() || v.IsUndefined() {
		return nil
	}
	return fmt.Errorf("%s: %s", v.Get("name").String(), v.Get("message").String())
}

// catch turns a JavaScript exception thrown into Go (a js.Error panic) into
// an error.
func catch(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if jerr, ok := r.(js.Error); ok {
				err = jerr
				return
			}
			panic(r)
		}
	}()
	return f()
}

var (
	uint8Array = global.Get("Uint8Array")
)

func jsBytes(b []byte) js.Value {
	a := uint8Array.New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// goBytes copies an ArrayBuffer or typed array into Go.
func goBytes(v js.Value) []byte {
	if !v.InstanceOf(uint8Array) {
		if v.Get("buffer").Truthy() {
			v = uint8Array.New(v.Get("buffer"), v.Get("byteOffset"), v.Get("byteLength"))
		} else {
			v = uint8Array.New(v)
		}
	}
	b := make([]byte, v.Length())
	js.CopyBytesToGo(b, v)
	return b
}
