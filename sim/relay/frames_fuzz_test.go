package relay

import (
	"errors"
	"testing"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/linksim/linksim/sim/wire"
	"github.com/linksim/linksim/sim/wire/pb"
)

// fuzzPingID marks the Ping that follows each fuzzed frame; the relay answers
// frames of one connection in order, so its Pong comes after the answer to
// anything answered at once.
const fuzzPingID = 1<<63 + 1

// FuzzRelayFrames sends one arbitrary frame (any plaintext, encrypted
// properly) to a relay over a real connection, as a registered phone or an
// anonymous device, then a Ping. The relay must answer the Ping, with one
// answer for the frame if it is a request, or close the connection with a
// close frame; and it must still serve a new device afterwards.
func FuzzRelayFrames(f *testing.F) {
	s := startRelay(f, Config{})
	ph := phone(f, s, "alice", "+15550100")
	for _, fr := range []*pb.Frame{
		{Id: 1, Body: &pb.Frame_Hello{Hello: &pb.Hello{}}},
		{Id: 2, Body: &pb.Frame_GetDevices{GetDevices: &pb.GetDevices{Users: []string{"+15550100"}}}},
		{Id: 3, Body: &pb.Frame_Send{Send: &pb.Send{MessageId: "m", Envelopes: []*pb.Envelope{
			{To: &pb.Address{User: "+15550100", Device: 1}, Type: pb.CipherType_SIGNAL_MESSAGE, Ciphertext: []byte{1}}}}}},
		{Id: 4, Body: &pb.Frame_SetProfile{SetProfile: &pb.SetProfile{}}},
		{Id: 5, Body: &pb.Frame_PairStart{PairStart: &pb.PairStart{}}},
		{Body: &pb.Frame_Ack{Ack: &pb.Ack{Seqs: []uint64{1, 2}}}},
		{Id: 6, Body: &pb.Frame_MediaUpload{MediaUpload: &pb.MediaUpload{Size: 100, EncSha256: make([]byte, 32)}}},
		{Id: 7, Body: &pb.Frame_Pong{Pong: &pb.Pong{}}},
	} {
		raw, err := proto.Marshal(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(false, raw)
		f.Add(true, raw)
	}
	f.Add(false, []byte{})
	f.Add(true, []byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, anonymous bool, plain []byte) {
		var r *rawConn
		if anonymous {
			r = rawDial(t, s)
		} else {
			r = rawDialAs(t, s, nil, ph.noise)
		}
		if err := r.write(plain); err != nil {
			t.Fatalf("write the fuzzed frame: %v", err)
		}
		ping, _ := wire.Encode(&pb.Frame{Id: fuzzPingID, Body: &pb.Frame_Ping{Ping: &pb.Ping{}}})
		r.write(ping) // fails if the relay already closed: what the reads below check
		expectAnswers(t, r, requestID(plain))
		stillServes(t, s)
	})
}

// requestID is the id of the request plain encodes, or 0 if it is none
// (not a frame, an Ack, or id 0: those get no answer of their own).
func requestID(plain []byte) uint64 {
	fr, err := wire.Decode(plain)
	if err != nil || fr.GetAck() != nil || fr.GetId() == fuzzPingID {
		return 0
	}
	return fr.GetId()
}

// expectAnswers reads until the Ping is answered and, when id is not 0, the
// request id is answered; or until the relay closes the connection with a
// close frame. A request answered twice before that fails.
func expectAnswers(t *testing.T, r *rawConn, id uint64) {
	t.Helper()
	pong, answers := false, 0
	for !pong || (id != 0 && answers == 0) {
		fr, err := r.readFrame() // waits up to waitFor, as long as a PairScan may wait
		switch {
		case err != nil && websocket.CloseStatus(err) != -1:
			return // closed cleanly, with a status and reason
		case errors.Is(err, wire.ErrDecode):
			t.Fatalf("the relay sent a frame that does not decode: %v", err)
		case err != nil:
			t.Fatalf("pong %v, %d answers to request %d, then no close frame: %v", pong, answers, id, err)
		case fr.GetId() == fuzzPingID:
			pong = true
		case id != 0 && fr.GetId() == id:
			if answers++; answers > 1 {
				t.Fatalf("request %d answered twice: %v", id, fr)
			}
		}
	}
}
