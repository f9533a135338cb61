package store

import (
	"slices"
	"testing"
)

// indexOf makes a queue index holding one device's items with these seqs,
// each of seq bytes and log key seq+1000.
func indexOf(dk string, seqs ...uint64) *queueIndex {
	x := newQueueIndex()
	for _, seq := range seqs {
		x.add(dk, queuedItem{seq: seq, key: seq + 1000, bytes: int64(seq)})
	}
	return x
}

func TestTakeRemovesOnlyThoseAskedAndKeepsTheOrder(t *testing.T) {
	x := indexOf("d", 2, 4, 6, 8, 10, 12)
	// Unsorted, repeated, missing and in-between seqs.
	if keys := x.take("d", []uint64{8, 5, 4, 8, 99}); !slices.Equal(keys, []uint64{1004, 1008}) {
		t.Fatalf("took keys %v, want [1004 1008]", keys)
	}
	if left := seqsOf(x.after("d", 0, 100)); !slices.Equal(left, []uint64{2, 6, 10, 12}) {
		t.Fatalf("left %v, want [2 6 10 12]", left)
	}
	// The oldest ones.
	if keys := x.take("d", []uint64{6, 2}); !slices.Equal(keys, []uint64{1002, 1006}) {
		t.Fatalf("took keys %v, want [1002 1006]", keys)
	}
	if left := seqsOf(x.after("d", 0, 100)); !slices.Equal(left, []uint64{10, 12}) {
		t.Fatalf("left %v, want [10 12]", left)
	}
	if got, want := x.queued.Load(), int64(22); got != want || x.depth.Load() != 2 {
		t.Fatalf("queued %d bytes in %d items, want %d in 2", got, x.depth.Load(), want)
	}
	x.add("d", queuedItem{seq: 14, key: 1014, bytes: 14})
	if keys := x.take("d", []uint64{10, 12, 14}); len(keys) != 3 || x.len("d") != 0 {
		t.Fatalf("took %v, %d left, want all 3 and none", keys, x.len("d"))
	}
	if _, ok := x.queues["d"]; ok {
		t.Fatal("an emptied queue is still held")
	}
}

// BenchmarkDrainOneAckAtATime acks a deep queue's items one by one, oldest
// first, as a device catching up does: linear in the queue's depth, not
// quadratic.
func BenchmarkDrainOneAckAtATime(b *testing.B) {
	const depth = 50_000
	seqs := make([]uint64, depth)
	for i := range seqs {
		seqs[i] = uint64(i + 1)
	}
	for b.Loop() {
		x := indexOf("d", seqs...)
		for _, seq := range seqs {
			x.take("d", []uint64{seq})
		}
	}
}
