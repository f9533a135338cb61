package device

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/linksim/linksim/sim/wire/pb"
)

// lists caches the device lists this device last saw, per user.
type lists struct {
	mu sync.Mutex
	by map[string]*pb.DeviceList
}

func newLists() *lists { return &lists{by: make(map[string]*pb.DeviceList)} }

func (c *lists) get(user string) *pb.DeviceList {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.by[user]
}

func (c *lists) put(ls ...*pb.DeviceList) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range ls {
		c.by[l.User] = l
	}
}

// ListHash is the device-list hash of docs/protocol.md section 7: the first 8
// bytes of SHA-256("user:id,id,...") in hex, ids ascending.
func ListHash(user string, devices []uint32) string {
	ids := slices.Clone(devices)
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatUint(uint64(id), 10)
	}
	sum := sha256.Sum256([]byte(user + ":" + strings.Join(parts, ",")))
	return hex.EncodeToString(sum[:8])
}
