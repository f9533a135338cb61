package device

import (
	"encoding/binary"
	"fmt"

	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire"
)

// Keys this package keeps in Config.State, beside sim/e2e's "signal/" keys.
const (
	keySelf          = "device/self"        // pb.Address of this device
	keyNoise         = "device/noise"       // 32-byte private then 32-byte public Noise key
	keyLastSeq       = "device/last-seq"    // highest delivery seq processed, 8 bytes big endian
	prefixMsg        = "chat/"              // chat/<peer>/<message id>: a stored message
	prefixSent       = "sent/"              // sent/<message id>: plaintext kept for retry receipts
	prefixSentOrder  = "sent-order/"        // sent-order/<seq, 16 digits>: the id kept seq-th, to drop the oldest
	keySentSeq       = "device/sent-seq"    // how many messages were ever kept for retries
	prefixName       = "contact/"           // contact/<user>: a contact's display name
	prefixInbox      = "inbox/"             // inbox/<user>:<device>/<message id>: decrypted, content not stored yet
	prefixAccountKey = "account-key/"       // account-key/<user>: the identity key of the user's phone, pinned
	keyKeyIndexes    = "device/key-indexes" // the phone's last signed KeyIndexList (serialized)
	prefixRetry      = "retry/"             // retry/<user>:<device>/<message id>: retry receipts sent for it, 8 bytes
	prefixAppState   = "appstate/"          // appstate/<key>: the synced state's newest write of key (pb.AppStateMutation)
	keySyncSent      = "device/sync-sent"   // the highest version of ours sent to our other devices, 8 bytes
)

// noiseKey loads the device's Noise key pair, making one on first use.
func noiseKey(st kv.KV) (wire.KeyPair, error) {
	raw, ok, err := st.Get(keyNoise)
	if err != nil {
		return wire.KeyPair{}, err
	}
	if ok {
		if len(raw) != 64 {
			return wire.KeyPair{}, fmt.Errorf("stored noise key is %d bytes, want 64", len(raw))
		}
		return wire.KeyPair{Private: raw[:32], Public: raw[32:]}, nil
	}
	k, err := wire.GenerateKey()
	if err != nil {
		return wire.KeyPair{}, err
	}
	return k, st.Put(keyNoise, append(append([]byte{}, k.Private...), k.Public...))
}

func getUint(st kv.KV, key string) (uint64, error) {
	raw, ok, err := st.Get(key)
	if err != nil || !ok {
		return 0, err
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("%s: %d bytes, want 8", key, len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

func putUint(st kv.KV, key string, v uint64) error {
	return st.Put(key, binary.BigEndian.AppendUint64(nil, v))
}
