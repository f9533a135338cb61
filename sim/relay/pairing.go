package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/route"
	"github.com/linksim/linksim/sim/store"
	"github.com/linksim/linksim/sim/wire/pb"
)

// refRetention is how long an issued ref is remembered after issue, so that
// a late scan hears REF_EXPIRED or REF_USED rather than REF_UNKNOWN;
// maxRefs bounds how many, whatever clients do.
const (
	refRetention = time.Hour
	maxRefs      = 100_000
)

// pairings is the companion's side of the pairing rendezvous (§10): the
// sessions of the companions connected here and the refs they show. A
// phone's scan reaches it through the router's Rendezvous, from this node or
// another, and is answered through a reply function, never a connection.
// One mutex guards all pairing state: one lock keeps the ref, the session
// and its offer consistent across goroutines. It is never held across a
// store write or a rendezvous call: every scan, ref and finish of the node
// waits for it, and on a cluster those are replicated writes.
type pairings struct {
	r     *Relay
	mu    sync.Mutex
	refs  map[string]*refInfo
	order []*refInfo // by issue time, for pruning
}

type refInfo struct {
	ref    string
	s      *session
	used   bool
	issued time.Time
	unhost func() // stops the rendezvous bringing scans of ref here
}

// session is one companion connection showing refs.
type session struct {
	c       *conn
	index   int // of the current ref, 1..RefCount
	cur     string
	expires time.Time
	timer   *time.Timer
	offer   *offer // a scan waiting for the companion
	done    bool
}

// offer is a scan the companion has to finish or reject.
type offer struct {
	ref          string
	reply        func(*pb.Frame) // answers the phone's scan, wherever the phone is
	user         string
	device       uint32
	accountKey   []byte // the phone's registered identity key
	companionKey []byte // the companion identity key from the QR code
	signed       *pb.SignedDeviceIdentity
	history      bool // the scan carried a sealed history
	timer        *time.Timer
	finishing    bool // the companion's PairFinish is being stored: only it ends the offer
}

func newPairings(r *Relay) *pairings {
	p := &pairings{r: r, refs: map[string]*refInfo{}}
	r.m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "linksim_relay_pairing_refs", Help: "Pairing refs remembered (at most 100,000, for an hour).",
	}, func() float64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return float64(len(p.refs))
	}))
	return p
}

func (c *conn) pairing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session != nil
}

func (c *conn) setSession(s *session) {
	c.mu.Lock()
	c.session = s
	c.mu.Unlock()
}

func (c *conn) getSession() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// onPairStart starts showing refs on an anonymous connection.
func (c *conn) onPairStart(id uint64) (*pb.Frame, error) {
	if _, ok := c.device(); ok {
		return nil, fail(pb.ErrorCode_ALREADY_REGISTERED, "this noise key already is a device")
	}
	p := c.r.pair
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.getSession() != nil {
		return nil, badRequest("already pairing")
	}
	s := &session{c: c}
	c.setSession(s)
	c.answer(id, okFrame())
	p.next(s)
	c.logger().Info("pairing started")
	return nil, nil
}

// next issues the session's next ref, or closes the session after the last.
// p.mu is held.
func (p *pairings) next(s *session) {
	if s.timer != nil {
		s.timer.Stop()
	}
	cfg := p.r.cfg
	if s.index >= cfg.RefCount {
		s.done = true
		s.c.logger().Info("pairing refs expired")
		s.c.shutdown("pairing expired", &pb.Frame{Body: &pb.Frame_PairClosed{PairClosed: &pb.PairClosed{Reason: "expired"}}})
		return
	}
	s.index++
	ttl := cfg.RefNextTTL
	if s.index == 1 {
		ttl = cfg.RefFirstTTL
	}
	var b [16]byte
	rand.Read(b[:])
	ref, now := base64.RawURLEncoding.EncodeToString(b[:]), time.Now()
	s.cur, s.expires = ref, now.Add(ttl)
	ri := &refInfo{ref: ref, s: s, issued: now, unhost: func() {}}
	p.refs[ref] = ri
	p.order = append(p.order, ri)
	for len(p.order) > 0 && (now.Sub(p.order[0].issued) > refRetention || len(p.order) > maxRefs) {
		delete(p.refs, p.order[0].ref)
		p.order[0].unhost()
		p.order = p.order[1:]
	}
	s.timer = time.AfterFunc(ttl, func() { p.expire(s, ref) })
	go p.show(s, ri, &pb.PairRef{Ref: ref, ExpiresUnixMs: s.expires.UnixMilli(), Index: uint32(s.index), Count: uint32(cfg.RefCount)})
}

// show has the rendezvous bring scans of ri's ref here, then sends the ref
// to the companion, unless a newer one replaced it meanwhile.
func (p *pairings) show(s *session, ri *refInfo, ref *pb.PairRef) {
	unhost, err := p.r.rv.Host(ri.ref, p.hosted)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if !s.done {
			s.done = true
			s.c.logger().Error("hosting a pairing ref", "err", err)
			s.c.shutdown("internal error", nil)
		}
		return
	}
	if p.refs[ri.ref] != ri {
		unhost() // pruned meanwhile
		return
	}
	ri.unhost = unhost
	if !s.done && s.cur == ri.ref {
		s.c.send(&pb.Frame{Body: &pb.Frame_PairRef{PairRef: ref}})
	}
}

func (p *pairings) expire(s *session, ref string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.done || s.cur != ref || s.offer != nil {
		return
	}
	p.next(s)
}

// scanSlack is how much longer than PairTimeout a phone's scan waits for
// the host's answer, which comes by PairTimeout unless the host is gone.
const scanSlack = 5 * time.Second

// onPairScan hands the scan to the node hosting the ref (this one or
// another) and answers the phone with what that node answers: Linked, or
// the error of §10 step 5, or what the companion said.
func (c *conn) onPairScan(me store.Address, id uint64, f *pb.Frame) (*pb.Frame, error) {
	if me.Device != 0 {
		err := fail(pb.ErrorCode_NOT_PRIMARY, "only the phone scans")
		c.r.m.pairOutcome(err)
		return nil, err
	}
	req := f.GetPairScan()
	raw, err := pb.Marshal(req)
	if err != nil {
		return nil, err
	}
	go func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.r.cfg.PairTimeout+scanSlack)
		defer cancel()
		b, err := c.r.rv.Scan(ctx, req.GetRef(), route.Scan{Phone: me, Request: raw})
		resp := new(pb.Frame)
		switch {
		case errors.Is(err, route.ErrNoHost):
			err = fail(pb.ErrorCode_REF_UNKNOWN, "no such ref")
			c.r.m.pairOutcome(err)
			resp = c.errorFrame(id, err)
		case err != nil:
			resp = c.errorFrame(id, fmt.Errorf("pairing rendezvous: %w", err))
		default:
			if err := pb.Unmarshal(b, resp); err != nil {
				resp = c.errorFrame(id, fmt.Errorf("pairing rendezvous answer: %w", err))
			}
		}
		if e := resp.GetError(); e != nil {
			c.logger().Info("scan refused", "code", e.GetCode().String(), "msg", e.GetMessage())
		}
		c.answer(id, resp)
	}()
	return nil, nil
}

// hosted takes a scan of a ref shown here, brought by the rendezvous.
func (p *pairings) hosted(sc route.Scan, reply func([]byte)) {
	answer := func(f *pb.Frame) {
		b, err := pb.Marshal(f)
		if err != nil {
			b, _ = pb.Marshal(errFrame(0, pb.ErrorCode_INTERNAL, "internal error"))
		}
		reply(b)
	}
	req := new(pb.PairScan)
	if err := pb.Unmarshal(sc.Request, req); err != nil {
		answer(errFrame(0, pb.ErrorCode_BAD_REQUEST, "pair scan does not decode"))
		return
	}
	if err := p.scan(sc.Phone, req, answer); err != nil {
		p.r.m.pairOutcome(err)
		answer(errorFrameLogged(p.r.log, 0, err))
	}
}

// scan runs the checks of §10 step 5 in the documented order, then offers
// the signed identity to the companion. The phone's answer comes when the
// companion finishes or rejects, or the offer times out.
func (p *pairings) scan(me store.Address, req *pb.PairScan, reply func(*pb.Frame)) error {
	// Read what the checks need before taking the lock.
	acct, err := p.r.st.Account(me.User)
	if err != nil {
		return err
	}
	ids, err := p.r.st.DeviceIDs(me.User)
	if err != nil {
		return err
	}
	phone, err := p.r.st.Device(me)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ri := p.refs[req.GetRef()]
	switch {
	case ri == nil:
		return fail(pb.ErrorCode_REF_UNKNOWN, "no such ref")
	case ri.used:
		return fail(pb.ErrorCode_REF_USED, "ref already scanned")
	}
	s := ri.s
	if s.done || s.offer != nil || s.cur != ri.ref || !time.Now().Before(s.expires) || s.c.isClosing() {
		return fail(pb.ErrorCode_REF_EXPIRED, "ref is no longer the current one")
	}
	if !bytes.Equal(req.GetCompanionNoiseKey(), s.c.key) {
		return fail(pb.ErrorCode_KEY_MISMATCH, "the QR code's noise key is not the companion's")
	}
	if len(ids)-1 >= p.r.cfg.MaxCompanions {
		return fail(pb.ErrorCode_TOO_MANY_DEVICES, "%s already has %d companions", me.User, len(ids)-1)
	}
	signed, device, err := parseScan(req, me.User, acct.MaxDevice)
	if err != nil {
		return err
	}
	if _, err := e2e.VerifyAccountSignature(signed, req.GetCompanionIdentityKey(), phone.IdentityKey); err != nil {
		return fail(pb.ErrorCode_BAD_SIGNATURE, "account signature does not verify with the phone's identity key")
	}
	ri.used = true
	s.timer.Stop()
	o := &offer{
		ref: ri.ref, reply: reply, user: me.User, device: device,
		accountKey: phone.IdentityKey, companionKey: req.GetCompanionIdentityKey(), signed: signed,
		history: len(req.GetHistory()) > 0,
	}
	s.offer = o
	o.timer = time.AfterFunc(p.r.cfg.PairTimeout, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !o.finishing {
			p.resolve(s, o, nil, fail(pb.ErrorCode_PAIR_TIMEOUT, "the companion did not answer in time"))
		}
	})
	s.c.send(&pb.Frame{Body: &pb.Frame_PairOffer{PairOffer: &pb.PairOffer{
		Ref: ri.ref, Identity: req.GetIdentity(), AccountIdentityKey: phone.IdentityKey, History: req.GetHistory(),
	}}})
	s.c.logger().Info("scan offered to companion", "phone", me.User, "new_device", device)
	return nil
}

// maxSealedHistory bounds PairScan.history: the largest bundle a scan
// carries, sealed.
const maxSealedHistory = e2e.HistoryInline + e2e.SealedHistoryOverhead

// parseScan decodes S and its details and checks them (§10 step 5).
func parseScan(req *pb.PairScan, user string, maxDevice uint32) (*pb.SignedDeviceIdentity, uint32, error) {
	if !publicKey(req.GetCompanionIdentityKey()) {
		return nil, 0, badRequest("companion identity key is not a 33-byte public key")
	}
	if n := len(req.GetHistory()); n > maxSealedHistory {
		return nil, 0, badRequest("sealed history of %d bytes, over the %d a scan carries", n, maxSealedHistory)
	}
	var signed pb.SignedDeviceIdentity
	if err := pb.Unmarshal(req.GetIdentity().GetDetails(), &signed); err != nil || len(signed.GetDetails()) == 0 {
		return nil, 0, badRequest("signed device identity does not parse")
	}
	var id pb.DeviceIdentity
	if err := pb.Unmarshal(signed.GetDetails(), &id); err != nil {
		return nil, 0, badRequest("device identity does not parse")
	}
	switch {
	case id.GetUser() != user:
		return nil, 0, badRequest("device identity names user %q, not the phone's", id.GetUser())
	case id.GetDevice() != id.GetKeyIndex():
		return nil, 0, badRequest("device %d differs from key index %d", id.GetDevice(), id.GetKeyIndex())
	case id.GetDevice() <= maxDevice:
		return nil, 0, badRequest("device %d is not above %d, the highest the account used", id.GetDevice(), maxDevice)
	}
	return &signed, id.GetDevice(), nil
}

// resolve ends an offer: the phone's scan is answered with linked or err.
// Unless the session is over, the companion gets a fresh ref. p.mu is held.
func (p *pairings) resolve(s *session, o *offer, linked *pb.Frame, err error) {
	if s.offer != o {
		return // already resolved
	}
	s.offer = nil
	o.timer.Stop()
	if err != nil {
		p.r.m.pairOutcome(err)
		o.reply(errorFrameLogged(p.r.log, 0, err))
		p.r.log.Info("pairing failed", "user", o.user, "new_device", o.device, "err", err)
		if !s.done {
			p.next(s)
		}
		return
	}
	p.r.m.pairings.WithLabelValues("LINKED").Inc()
	o.reply(linked)
}

// ended is called when a connection ends: a session it held is over, and a
// pending offer fails.
func (p *pairings) ended(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := c.getSession()
	if s == nil {
		return
	}
	wasDone := s.done
	s.over()
	if wasDone {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.offer != nil {
		p.resolve(s, s.offer, nil, fail(pb.ErrorCode_PAIR_TIMEOUT, "the companion disconnected"))
	}
}

// over ends the session. Its refs stay remembered for an hour (refRetention),
// so it lets go of the connection: a linked companion's connection must be
// collectable once it ends. p.mu is held.
func (s *session) over() {
	s.done = true
	s.c = nil
}

// offerFor finds the pending offer of c's session for ref.
func (p *pairings) offerFor(c *conn, ref string) (*session, *offer, error) {
	s := c.getSession()
	if s == nil {
		return nil, nil, badRequest("not pairing")
	}
	if s.offer == nil || s.offer.ref != ref {
		if ri := p.refs[ref]; ri != nil && ri.s == s {
			return nil, nil, fail(pb.ErrorCode_REF_EXPIRED, "the offer for this ref is over")
		}
		return nil, nil, badRequest("no offer for this ref")
	}
	return s, s.offer, nil
}

// onPairReject is the companion refusing an offer (bad HMAC or signature):
// the phone's scan fails with the companion's code.
func (c *conn) onPairReject(id uint64, req *pb.PairReject) (*pb.Frame, error) {
	p := c.r.pair
	p.mu.Lock()
	defer p.mu.Unlock()
	s, o, err := p.offerFor(c, req.GetRef())
	if err != nil {
		return nil, err
	}
	code := req.GetCode()
	if code != pb.ErrorCode_HMAC_MISMATCH && code != pb.ErrorCode_BAD_SIGNATURE {
		// Still a refusal: the phone hears it now, not at PAIR_TIMEOUT.
		p.resolve(s, o, nil, fail(pb.ErrorCode_BAD_REQUEST, "the companion refused the scan with code %v", code))
		return nil, badRequest("reject code %v, want HMAC_MISMATCH or BAD_SIGNATURE", code)
	}
	msg := req.GetMessage()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	c.answer(id, okFrame())
	p.resolve(s, o, nil, fail(code, "the companion rejected the scan: %s", msg))
	return nil, nil
}

// onPairFinish links the companion (§10 step 7). A failure fails the
// phone's scan with the same error, and the companion gets a fresh ref.
func (c *conn) onPairFinish(id uint64, req *pb.PairFinish) (*pb.Frame, error) {
	p := c.r.pair
	p.mu.Lock()
	s, o, err := p.offerFor(c, req.GetRef())
	if err != nil {
		p.mu.Unlock()
		return nil, err
	}
	// Checked and stored without p.mu. Meanwhile only this finish ends the
	// offer: the timer leaves it alone, and the connection's other requests,
	// and its end, wait for this one.
	o.finishing = true
	p.mu.Unlock()
	a, err := p.link(c, o, req)
	p.mu.Lock()
	o.finishing = false
	if err != nil {
		// Answered before resolve, which gives the companion a new ref.
		c.send(c.errorFrame(id, err))
		p.resolve(s, o, nil, err)
		p.mu.Unlock()
		c.logger().Info("pair finish refused", "err", err)
		return nil, nil
	}
	s.over()
	c.setSession(nil)
	c.becomeDevice(a, req.GetMirror())
	c.answer(id, &pb.Frame{Body: &pb.Frame_Linked{Linked: &pb.Linked{User: a.User, Device: a.Device}}})
	p.resolve(s, o, &pb.Frame{Body: &pb.Frame_Linked{Linked: &pb.Linked{
		User: a.User, Device: a.Device, HistoryTaken: o.history && req.GetHistoryTaken(),
	}}}, nil)
	p.mu.Unlock()
	c.logger().Info("companion linked", "platform", req.GetPlatform(), "mirror", req.GetMirror())
	c.r.devicesChanged(a.User)
	c.restartAfterPairing()
	return nil, nil
}

// link checks the companion's PairFinish and stores the new device.
func (p *pairings) link(c *conn, o *offer, req *pb.PairFinish) (store.Address, error) {
	id := req.GetIdentity()
	if !bytes.Equal(id.GetDetails(), o.signed.GetDetails()) ||
		!bytes.Equal(id.GetAccountSignatureKey(), o.signed.GetAccountSignatureKey()) ||
		!bytes.Equal(id.GetAccountSignature(), o.signed.GetAccountSignature()) {
		return store.Address{}, badRequest("device identity differs from the one the phone signed")
	}
	if _, err := e2e.VerifyDeviceIdentity(id, o.companionKey, o.accountKey); err != nil {
		return store.Address{}, fail(pb.ErrorCode_BAD_SIGNATURE, "device identity: %v", err)
	}
	keys := req.GetKeys()
	if err := checkKeys(keys); err != nil {
		return store.Address{}, err
	}
	if !bytes.Equal(keys.GetIdentityKey(), o.companionKey) {
		return store.Address{}, badRequest("identity key differs from the one in the QR code")
	}
	if len(req.GetPlatform()) > maxPlatform {
		return store.Address{}, badRequest("platform of %d bytes, at most %d", len(req.GetPlatform()), maxPlatform)
	}
	identity, err := pb.Marshal(id)
	if err != nil {
		return store.Address{}, err
	}
	a := store.Address{User: o.user, Device: o.device}
	err = p.r.st.AddCompanion(store.Device{
		Address: a, NoiseKey: c.key, RegistrationID: keys.GetRegistrationId(),
		IdentityKey: keys.GetIdentityKey(), SignedPreKey: keys.GetSignedPrekey(),
		Identity: identity, Platform: req.GetPlatform(), Mirror: req.GetMirror(), CreatedUnixMs: nowMs(),
	}, keys.GetPrekeys(), p.r.cfg.MaxCompanions)
	switch {
	case errors.Is(err, store.ErrTooManyDevices):
		return store.Address{}, fail(pb.ErrorCode_TOO_MANY_DEVICES, "%s has the maximum number of companions", o.user)
	case errors.Is(err, store.ErrDeviceID):
		return store.Address{}, badRequest("device id %d was used meanwhile", o.device)
	case errors.Is(err, store.ErrKeyTaken):
		return store.Address{}, fail(pb.ErrorCode_ALREADY_REGISTERED, "this noise key already is a device")
	case err != nil:
		return store.Address{}, err
	}
	return a, nil
}
