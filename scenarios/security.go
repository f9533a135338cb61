package scenarios

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/linksim/linksim/harness"
)

var securityFlows = []Flow{
	{
		Feature: "End-to-end encryption", Outcome: "the relay's store and logs never hold a message's plaintext",
		Labels: []string{Smoke, Security}, Backends: true, Timeout: 30 * time.Second,
		Run:    noPlaintextAtRelay,
		Expect: harness.Expect{Messages: 1, Deliveries: 3, Devices: 3},
	},
}

func noPlaintextAtRelay(ctx context.Context, env *harness.Env) error {
	dataDir := env.DataDir() // skips on a relay whose store the harness cannot read
	alice, bob, err := aliceAndBob(ctx, env, 1, 1)
	if err != nil {
		return err
	}
	canary := "canary-" + rand.Text()
	// Bob's web client is away, so the message also rests in the relay's
	// queue on disk, not only passes through.
	bob.Webs[0].Close()
	if _, err := alice.Web(0).SendText(ctx, bob.Phone.Self().User, canary); err != nil {
		return err
	}
	if err := await(ctx, "bob's phone to decrypt the canary", func() error {
		for _, m := range bob.Phone.Messages(alice.Phone.Self().User) {
			if m.Text == canary {
				return nil
			}
		}
		return fmt.Errorf("not received yet")
	}); err != nil {
		return err
	}
	needles := [][]byte{[]byte(canary), []byte(hex.EncodeToString([]byte(canary)))}
	if err := findNone(env.RelayLog(), "the relay's log", needles); err != nil {
		return err
	}
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return findNone(b, "relay file "+path, needles)
	})
	if err != nil {
		return err
	}
	if _, err := env.Reopen(ctx, bob, 0); err != nil {
		return err
	}
	return clean(ctx, env)
}

func findNone(haystack []byte, where string, needles [][]byte) error {
	for _, n := range needles {
		if i := bytes.Index(haystack, n); i >= 0 {
			return fmt.Errorf("%s holds the plaintext canary %q at byte %d", where, n, i)
		}
	}
	return nil
}
