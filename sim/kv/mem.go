package kv

import (
	"errors"
	"slices"
	"strings"
	"sync"
)

// errEmptyKey matches bbolt, which cannot store an empty key, so both
// implementations accept the same keys.
var errEmptyKey = errors.New("kv: empty key")

// Mem is a KV held in memory. Values are copied in and out, so callers may
// reuse their slices. The zero value is not usable; call NewMem.
type Mem struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMem returns an empty in-memory KV.
func NewMem() *Mem {
	return &Mem{m: make(map[string][]byte)}
}

func (m *Mem) Get(key string) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.m[key]
	if !ok {
		return nil, false, nil
	}
	return slices.Clone(v), true, nil
}

func (m *Mem) Put(key string, value []byte) error {
	if key == "" {
		return errEmptyKey
	}
	// Append to a non-nil empty slice so an empty value still reads back
	// as present and non-nil.
	v := append([]byte{}, value...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = v
	return nil
}

func (m *Mem) Delete(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
	return nil
}

func (m *Mem) Scan(prefix string, fn func(key string, value []byte) error) error {
	type kv struct {
		k string
		v []byte
	}
	var snap []kv
	m.mu.RLock()
	for k, v := range m.m {
		if strings.HasPrefix(k, prefix) {
			snap = append(snap, kv{k, slices.Clone(v)})
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(snap, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	for _, e := range snap {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mem) DeletePrefix(prefix string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.m {
		if strings.HasPrefix(k, prefix) {
			delete(m.m, k)
		}
	}
	return nil
}
