package device

import (
	"fmt"
	"testing"

	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

func TestKeepSentForgetsTheOldest(t *testing.T) {
	st := kv.NewMem()
	d := &Device{cfg: Config{State: st}}
	const extra = 5
	for i := range keepSentMax + extra {
		c := &pb.Content{Kind: &pb.Content_Chat{Chat: &pb.Chat{Text: fmt.Sprint(i)}}}
		if err := d.keepSent(fmt.Sprintf("m%04d", i), "+15550100", c); err != nil {
			t.Fatal(err)
		}
	}
	kept := 0
	st.Scan(prefixSent, func(string, []byte) error { kept++; return nil })
	if kept != keepSentMax {
		t.Errorf("keeps %d messages for retries, want %d", kept, keepSentMax)
	}
	for i, want := range map[int]bool{0: false, extra - 1: false, extra: true, keepSentMax + extra - 1: true} {
		if _, ok, _ := st.Get(fmt.Sprintf("%sm%04d", prefixSent, i)); ok != want {
			t.Errorf("message %d kept: %v, want %v", i, ok, want)
		}
	}
}
