package wire

import (
	"errors"
	"fmt"

	"github.com/linksim/linksim/sim/wire/pb"
)

// MaxFrame is the largest encoded frame either side accepts. Bigger payloads
// (media, large history bundles) go through the relay's blob store instead.
const MaxFrame = 1 << 20

// ErrFrameTooLarge is returned for frames over MaxFrame, encoded or decoded.
var ErrFrameTooLarge = fmt.Errorf("frame larger than %d bytes", MaxFrame)

// ErrDecode means a frame was received intact (it decrypted) but is not a
// frame this version understands: the peer's bug, not the network's.
var ErrDecode = errors.New("decode frame")

// Encode serializes a frame, refusing one the peer would refuse.
func Encode(f *pb.Frame) ([]byte, error) { return encode(f, MaxFrame) }

// Decode parses a frame. A frame without a body, or with a body this version
// does not know, is an error, so callers never have to guess.
func Decode(b []byte) (*pb.Frame, error) { return decode(b, MaxFrame) }

// encode and decode take the size limit as a parameter so that the fuzz
// target can explore frames near the limit with small inputs.
func encode(f *pb.Frame, limit int) ([]byte, error) {
	if f.GetBody() == nil {
		return nil, errors.New("encode frame: no body")
	}
	b, err := pb.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode frame: %w", err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("encode frame: %w", ErrFrameTooLarge)
	}
	return b, nil
}

func decode(b []byte, limit int) (*pb.Frame, error) {
	if len(b) > limit {
		return nil, fmt.Errorf("%w: %w", ErrDecode, ErrFrameTooLarge)
	}
	var f pb.Frame
	if err := pb.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	if f.GetBody() == nil {
		return nil, fmt.Errorf("%w: no known body", ErrDecode)
	}
	// The encoding may leave out what an encoder writes back (an empty map
	// value), so a frame can grow when re-encoded: accept only a frame that
	// fits the limit re-encoded too, so whatever decodes can be relayed.
	if pb.Size(&f) > limit {
		return nil, fmt.Errorf("%w: re-encoded: %w", ErrDecode, ErrFrameTooLarge)
	}
	return &f, nil
}
