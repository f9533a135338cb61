package device

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/linksim/linksim/sim/e2e"
	"github.com/linksim/linksim/sim/wire/pb"
)

// defaultPreKeys is how many one-time prekeys a new device uploads unless
// Config.PreKeys says otherwise.
const defaultPreKeys = 100

// Register creates the account user with this device as its phone (device 0)
// and connects it. cfg.State must not hold a device yet.
func Register(ctx context.Context, cfg Config, user, pushName string) (*Device, error) {
	cfg = cfg.withDefaults()
	fail := func(err error) (*Device, error) {
		return nil, fmt.Errorf("%s: register %s: %w", cfg.Name, user, err)
	}
	l, sig, err := joinLink(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	keys, err := sig.Keys(cfg.PreKeys)
	if err != nil {
		l.close()
		return fail(err)
	}
	ans, err := l.call(ctx, &pb.Frame{Body: &pb.Frame_Register{Register: &pb.Register{User: user, PushName: pushName, Keys: keys}}})
	if err != nil {
		l.close()
		return fail(err)
	}
	self := e2e.Address{User: ans.GetRegistered().GetUser(), Device: ans.GetRegistered().GetDevice()}
	d, err := linked(cfg, l, sig, self, nil)
	if err != nil {
		return fail(err)
	}
	// No companion yet, but peers accept no keys without a signed list.
	if err := d.signDevices(ctx, nil); err != nil {
		d.Close()
		return fail(err)
	}
	return d, nil
}

// joinLink opens an anonymous connection for a device that has no account
// yet, making its keys on first use.
func joinLink(ctx context.Context, cfg Config) (*link, *e2e.Store, error) {
	if _, ok, err := cfg.State.Get(keySelf); err != nil || ok {
		return nil, nil, errors.Join(err, errors.New("state already holds a device; open it instead"))
	}
	key, err := noiseKey(cfg.State)
	if err != nil {
		return nil, nil, err
	}
	cfg.Mark("keys.noise")
	sig, err := e2e.Open(cfg.State)
	if err != nil {
		return nil, nil, err
	}
	cfg.Mark("keys.identity")
	l, err := dial(ctx, cfg, key)
	if err != nil {
		return nil, nil, err
	}
	cfg.Mark("relay.dialled")
	return l, sig, nil
}

// linked records who the device now is and starts it on the open link,
// with history, if its phone's scan carried one, imported first: what
// arrives once it is online is stored after it.
func linked(cfg Config, l *link, sig *e2e.Store, self e2e.Address, history *pb.HistorySync) (*Device, error) {
	if err := saveSelf(cfg.State, self); err != nil {
		l.close()
		return nil, err
	}
	key, err := noiseKey(cfg.State)
	if err != nil {
		l.close()
		return nil, err
	}
	d := newDevice(cfg, key, sig, self)
	if history != nil {
		if err := d.showHistory(e2e.Address{User: self.User}, history); err != nil {
			// The relay has linked us and the phone counts the history
			// as taken: the device goes on without it, as when a history
			// blob does not verify.
			d.log.Error("the scan's history does not import", "err", err)
		}
	}
	d.start(l)
	return d, nil
}

// Ref is one pairing QR code the companion shows.
type Ref struct {
	QR      string // the QR payload, docs/protocol.md section 10
	Expires time.Time
	Index   int // 1-based position among Count refs
	Count   int
}

// ErrPairingExpired means every ref expired without a scan.
var ErrPairingExpired = errors.New("pairing expired: every QR code ran out unscanned")

// Pair runs the companion side of pairing: it calls show for every ref the
// relay issues (the caller renders it as a QR code, and may return once it
// is on screen: the registration keys are made after the first show
// returns), verifies the phone's signed device identity, counter-signs it,
// and returns the linked device. A scan that fails verification is refused
// and pairing goes on.
func Pair(ctx context.Context, cfg Config, show func(Ref)) (*Device, error) {
	cfg = cfg.withDefaults()
	fail := func(err error) (*Device, error) {
		return nil, fmt.Errorf("%s: pair: %w", cfg.Name, err)
	}
	l, sig, err := joinLink(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if ctx.Err() != nil {
			l.close()
		}
	}()
	adv := make([]byte, 32)
	rand.Read(adv)
	key, err := noiseKey(cfg.State)
	if err != nil {
		return fail(err)
	}
	if _, err := l.call(ctx, &pb.Frame{Body: &pb.Frame_PairStart{PairStart: &pb.PairStart{}}}); err != nil {
		l.close()
		return fail(err)
	}
	cfg.Mark("pair.started")
	// The pairing socket lives for minutes with nothing to say.
	kctx, stopKeepAlive := context.WithCancel(ctx)
	defer stopKeepAlive()
	go l.keepAlive(kctx, cfg.KeepAlive)
	// The keys to register are made and stored while the first QR code is
	// on screen, not after the scan: in a browser that is tens to hundreds
	// of milliseconds of WebAssembly crypto and IndexedDB writes taken off
	// the wait between scan and linked. One set serves every offer of this
	// pairing.
	keys := make(chan keysResult, 1)
	keysStarted := false
	makeKeys := func() {
		if keysStarted {
			return
		}
		keysStarted = true
		go func() {
			start := time.Now()
			k, err := registrationKeys(sig, cfg.PreKeys)
			cfg.Logger.Info("registration keys made", "device", cfg.Name, "prekeys", cfg.PreKeys, "took", time.Since(start), "err", err)
			if err == nil {
				// Still waiting for the scan: the offer's first-use
				// crypto is done now rather than after it.
				err = sig.WarmUp()
			}
			keys <- keysResult{k, err}
		}()
	}
	// Pair returns only once they are stored: state it leaves behind is
	// complete, and a next Pair on it cannot race this one for prekey ids.
	defer func() {
		if keysStarted {
			keys <- <-keys
		}
	}()
	for {
		f, err := l.next(ctx)
		if err != nil {
			l.close()
			return fail(err)
		}
		switch b := f.Body.(type) {
		case *pb.Frame_PairRef:
			cfg.Mark("pair.ref")
			qr := e2e.QR{Ref: b.PairRef.Ref, NoiseKey: key.Public, IdentityKey: sig.IdentityKey(), AdvSecret: adv}
			show(Ref{QR: qr.String(), Expires: time.UnixMilli(b.PairRef.ExpiresUnixMs), Index: int(b.PairRef.Index), Count: int(b.PairRef.Count)})
			makeKeys()
		case *pb.Frame_PairClosed:
			l.close()
			return fail(fmt.Errorf("%w (%s)", ErrPairingExpired, b.PairClosed.Reason))
		case *pb.Frame_PairOffer:
			cfg.Mark("pair.offer")
			makeKeys()
			self, history, err := acceptOffer(ctx, cfg, l, sig, adv, b.PairOffer, keys)
			if err != nil {
				cfg.Logger.Info("refused a scan", "device", cfg.Name, "err", err)
				continue
			}
			return linked(cfg, l, sig, self, history)
		}
	}
}

// acceptOffer checks the phone's signed identity and finishes pairing, or
// tells the relay why it refuses (the phone's scan then fails with that code).
// It returns the history the scan carried, if it opens.
func acceptOffer(ctx context.Context, cfg Config, l *link, sig *e2e.Store, adv []byte, offer *pb.PairOffer, keys chan keysResult) (e2e.Address, *pb.HistorySync, error) {
	signed, id, err := e2e.OpenDeviceIdentity(offer.Identity, adv, sig.IdentityKey(), offer.AccountIdentityKey)
	if err == nil {
		err = e2e.CounterSign(sig, signed)
	}
	if err != nil {
		code := pb.ErrorCode_BAD_SIGNATURE
		if errors.Is(err, e2e.ErrHMACMismatch) {
			code = pb.ErrorCode_HMAC_MISMATCH
		}
		reject := &pb.PairReject{Ref: offer.Ref, Code: code, Message: err.Error()}
		if _, rerr := l.call(ctx, &pb.Frame{Body: &pb.Frame_PairReject{PairReject: reject}}); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return e2e.Address{}, nil, err
	}
	var k keysResult
	select {
	case k = <-keys:
		keys <- k // kept for the next offer, should this one fail
	case <-ctx.Done():
		return e2e.Address{}, nil, ctx.Err()
	}
	if k.err != nil {
		return e2e.Address{}, nil, k.err
	}
	history := scannedHistory(cfg, sig, adv, offer)
	finish := &pb.PairFinish{Ref: offer.Ref, Identity: signed, Keys: k.keys, Platform: cfg.Name, Mirror: cfg.Mirror, HistoryTaken: history != nil}
	cfg.Mark("pair.finish")
	ans, err := l.call(ctx, &pb.Frame{Body: &pb.Frame_PairFinish{PairFinish: finish}})
	if err != nil {
		return e2e.Address{}, nil, err
	}
	cfg.Mark("pair.linked")
	got := ans.GetLinked()
	if got.GetUser() != id.User || got.GetDevice() != id.Device {
		return e2e.Address{}, nil, fmt.Errorf("relay linked %s:%d, the phone signed %s:%d", got.GetUser(), got.GetDevice(), id.User, id.Device)
	}
	// The phone that scanned us is our account: its key vouches for our
	// other devices.
	if err := cfg.State.Put(accountKeyKey(id.User), offer.AccountIdentityKey); err != nil {
		return e2e.Address{}, nil, err
	}
	return e2e.Address{User: id.User, Device: id.Device}, history, nil
}

// scannedHistory opens the history the phone's scan carried, or returns
// nil: then PairFinish says it was not taken, and the phone sends it as a
// message (docs/protocol.md §10 step 8).
//
// A mirror companion takes none: it keeps no chats, and the phone's history
// message is what starts the Signal session of their mirror channel (its
// phone takes no session from a companion that is on no device list).
func scannedHistory(cfg Config, sig *e2e.Store, adv []byte, offer *pb.PairOffer) *pb.HistorySync {
	if len(offer.History) == 0 || cfg.Mirror {
		return nil
	}
	raw, err := sig.OpenHistory(adv, offer.Identity.GetDetails(), offer.History)
	var h *pb.HistorySync
	if err == nil {
		h, err = decodeHistory(raw)
	}
	if err != nil {
		cfg.Logger.Warn("the scan's history is refused; the phone will send it as a message", "device", cfg.Name, "err", err)
		return nil
	}
	cfg.Mark("history.opened")
	return h
}

// keysResult is the keys a companion registers with, made while it waits
// for a scan.
type keysResult struct {
	keys *pb.SignalKeys
	err  error
}

// keyBatch is how many prekeys registrationKeys makes between pauses.
const keyBatch = 20

// registrationKeys makes a companion's keys for PairFinish while it waits
// for a scan: its public keys and n new prekeys, made and stored keyBatch
// at a time with a pause before each batch. Under WebAssembly a goroutine
// is never preempted, so one long run of key generation would hold off the
// page drawing the QR code it runs beside; a pause lets the page's event
// loop run.
func registrationKeys(sig *e2e.Store, n int) (*pb.SignalKeys, error) {
	keys, err := sig.Keys(0)
	if err != nil {
		return nil, err
	}
	for len(keys.Prekeys) < n {
		time.Sleep(time.Millisecond)
		pks, err := sig.NewPreKeys(min(keyBatch, n-len(keys.Prekeys)))
		if err != nil {
			return nil, err
		}
		keys.Prekeys = append(keys.Prekeys, pks...)
	}
	return keys, nil
}
