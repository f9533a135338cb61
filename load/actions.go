package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linksim/linksim/harness"
	"github.com/linksim/linksim/sim/device"
	"github.com/linksim/linksim/sim/kv"
	"github.com/linksim/linksim/sim/wire/pb"
)

// member is one user of the run: a phone and its linked companions.
type member struct {
	user *harness.User
	// browser is its browser page, in a mixed fleet (browsers.go); nil for
	// most.
	browser *harness.Web
	// contacts are the users this one writes text to; readers the users
	// who write to it, whose chats it marks read.
	contacts, readers []string
	// mediaTo is the user this one sends media to, in a chat of media only:
	// the ledger counts a media message as received when its file has been
	// verified, later than a text that followed it would be, so a chat
	// mixing both would read as reordered.
	mediaTo string
	// index orders members, so sends take their gates in one order.
	index int
	// gate is held shared by every send from or to this user, and
	// exclusively by an unlink of one of its companions: no message to it
	// is under way when the phone removes it.
	gate sync.RWMutex

	mu      sync.Mutex
	offline []bool // per companion: closed by an offline action
	// busy counts, per companion, the actions using it; an offline action
	// waits for them (idle) so it never closes a device mid-send.
	busy []int
	idle *sync.Cond
}

// newMember registers user idx and links its companions by QR payload.
func (r *runner) newMember(ctx context.Context, idx int) (*member, error) {
	u, err := r.env.NewUser(ctx, fmt.Sprintf("u%06d", idx), r.def.Companions)
	if err != nil {
		return nil, err
	}
	for _, d := range u.Devices() {
		r.devices.Store(d.Name(), d)
	}
	r.live.addLinked(1 + len(u.Webs))
	m := &member{user: u, index: idx, offline: make([]bool, len(u.Webs)), busy: make([]int, len(u.Webs))}
	m.idle = sync.NewCond(&m.mu)
	if idx < r.def.Browsers {
		if err := r.addBrowser(ctx, m); err != nil {
			return nil, fmt.Errorf("%s: %w", browserName(u.Name), err)
		}
	}
	return m, nil
}

// setContacts makes member k write texts to the Contacts members after it
// (in a ring), so every user has as many contacts as readers, and media to
// the next one after those.
func (r *runner) setContacts() {
	n := len(r.members)
	c := min(r.def.Contacts, n-1)
	user := func(k int) string { return r.members[(k+n)%n].user.Phone.Self().User }
	r.byUser = make(map[string]*member, n)
	for k, m := range r.members {
		r.byUser[user(k)] = m
		for j := 1; j <= c; j++ {
			m.contacts = append(m.contacts, user(k+j))
			m.readers = append(m.readers, user(k-j))
		}
		m.mediaTo = user(k + c + 1)
		if c+1 >= n {
			m.mediaTo = "" // no chat left for media alone; Check refuses media then
		}
	}
}

// device picks one of m's online devices at random, the phone or a
// multi-device companion that is not closed, and keeps it open until
// release is called.
func (m *member) device() (d *device.Device, release func()) {
	c, release := m.pick(func(j int) harness.Client {
		if d := m.user.Device(j); d != nil {
			return d
		}
		return nil
	})
	return c.(*device.Device), release
}

// client picks one of m's clients at random, the phone or a companion of
// any topology that is not closed, and keeps it open until release is
// called.
func (m *member) client() (c harness.Client, release func()) {
	return m.pick(func(j int) harness.Client { return m.user.Web(j) })
}

// pick draws the phone or companion j, as web(j) returns it (nil: the
// phone instead).
func (m *member) pick(web func(j int) harness.Client) (c harness.Client, release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := rand.IntN(1 + len(m.user.Webs))
	if j == 0 || m.offline[j-1] || web(j-1) == nil {
		return m.user.Phone.Device, func() {}
	}
	j--
	m.busy[j]++
	return web(j), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.busy[j]--; m.busy[j] == 0 {
			m.idle.Broadcast()
		}
	}
}

func pickOne(s []string) string { return s[rand.IntN(len(s))] }

// picker draws actions by their mix weights.
type picker struct {
	names []string
	cum   []float64
}

func newPicker(d Definition) picker {
	names, weights := d.sortedMix()
	p := picker{names: names}
	total := 0.0
	for _, w := range weights {
		total += w
		p.cum = append(p.cum, total)
	}
	return p
}

func (p picker) pick() string {
	x := rand.Float64() * p.cum[len(p.cum)-1]
	for i, c := range p.cum {
		if x < c {
			return p.names[i]
		}
	}
	return p.names[len(p.names)-1]
}

// act runs one action for a random user.
func (r *runner) act(ctx context.Context, action string) error {
	m := r.members[rand.IntN(len(r.members))]
	switch action {
	case ActOffline:
		return r.offline(ctx, m)
	case ActUnlink:
		return r.unlink(ctx, m)
	}
	if action == ActText {
		c, release := m.client()
		defer release()
		to := pickOne(m.contacts)
		defer r.holdGates(m, to)()
		id, err := c.SendText(ctx, to, "load "+device.NewMessageID())
		if err != nil {
			r.live.forget(id)
		}
		return err
	}
	d, release := m.device()
	defer release()
	switch action {
	case ActMedia:
		size := int64(r.def.MediaSizes[rand.IntN(len(r.def.MediaSizes))])
		f := device.MediaFile{Type: pb.MediaType_DOCUMENT, Reader: io.LimitReader(rand.NewChaCha8(seed()), size),
			MimeType: "application/octet-stream", FileName: "load.bin"}
		if m.mediaTo == "" {
			return errors.New("no user left to send media to in a chat of its own (users must exceed contacts+1)")
		}
		defer r.holdGates(m, m.mediaTo)()
		id, err := d.SendMedia(ctx, m.mediaTo, f)
		if err != nil {
			r.live.forget(id)
		}
		return err
	case ActRead:
		return d.MarkRead(ctx, pickOne(m.readers))
	case ActReconnect:
		d.Disconnect()
		return nil
	}
	return fmt.Errorf("unknown action %q", action)
}

func seed() (s [32]byte) {
	for i := range 4 {
		v := rand.Uint64()
		for j := range 8 {
			s[i*8+j] = byte(v >> (8 * j))
		}
	}
	return s
}

// offline closes one of m's companions for OfflineFor, then opens it again
// on its state: what it missed arrives on reconnect.
func (r *runner) offline(ctx context.Context, m *member) error {
	j, ok := m.takeCompanion()
	if !ok {
		return nil
	}
	c := m.user.Webs[j]
	c.Close()
	select {
	case <-time.After(time.Duration(r.def.OfflineFor)):
	case <-ctx.Done():
	}
	// Reopen replaces Webs[j], which no one reads while offline[j] is set.
	if _, err := r.env.Reopen(context.WithoutCancel(ctx), m.user, j); err != nil {
		return fmt.Errorf("reopen %s/web-%d: %w", m.user.Name, j+1, err)
	}
	if d := m.user.Device(j); d != nil { // media downloads need a device; a mirror client has none of its own
		r.devices.Store(d.Name(), d)
	}
	m.giveBack(j)
	return nil
}

// takeCompanion takes one of m's companions, at random, away from the
// other actions: it waits until none uses it and returns its index; false
// when it was taken already (or m has none).
func (m *member) takeCompanion() (int, bool) {
	if len(m.offline) == 0 {
		return 0, false
	}
	j := rand.IntN(len(m.offline))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.offline[j] {
		return 0, false // already away
	}
	m.offline[j] = true
	for m.busy[j] > 0 {
		m.idle.Wait()
	}
	return j, true
}

// giveBack returns companion j, taken by takeCompanion, to the actions.
func (m *member) giveBack(j int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.offline[j] = false
}

// holdGates holds the gates of sender m and of user to shared until the
// returned release: lower index first, so two sends and two unlinks never
// wait on each other in a circle.
func (r *runner) holdGates(m *member, to string) (release func()) {
	gates := []*member{m}
	if peer := r.byUser[to]; peer != nil {
		gates = append(gates, peer)
	}
	slices.SortFunc(gates, func(a, b *member) int { return a.index - b.index })
	for _, g := range gates {
		g.gate.RLock()
	}
	return func() {
		for _, g := range gates {
			g.gate.RUnlock()
		}
	}
}

// unlink removes one of m's companions, by its phone or by logging out on
// the companion (at random), keeps it unlinked for OfflineFor and links it
// again by QR payload: the companion opens afresh, on an empty state, as
// the same name, and the phone scans its code. The phone only removes it
// once no message to or from it is under way (sends to and from m wait
// meanwhile), so the ledger expects nothing of it that the removal drops;
// what is sent while it is unlinked is not addressed to it, and after the
// new link it counts again.
func (r *runner) unlink(ctx context.Context, m *member) error {
	j, ok := m.takeCompanion()
	if !ok {
		return nil
	}
	d := m.user.Device(j)
	if d == nil {
		m.giveBack(j) // not linked: a relink failed before
		return nil
	}
	if err := r.remove(ctx, m, m.user.Web(j), d); err != nil {
		m.giveBack(j)
		return err
	}
	select {
	case <-time.After(time.Duration(r.def.OfflineFor)):
	case <-ctx.Done():
	}
	// No send to or from m until the new device is linked and named: a
	// send meanwhile could name it by address in the ledger. (The gate is
	// not needed for the phone's signed device list: the phone keeps the
	// new device on it however late its pushes come.) Reopen replaces
	// Webs[j], which no one reads while it is taken.
	m.user.States[j] = kv.NewMem()
	m.gate.Lock()
	_, err := r.env.Reopen(context.WithoutCancel(ctx), m.user, j)
	m.gate.Unlock()
	if err != nil {
		return fmt.Errorf("relink %s: %w", d.Name(), err)
	}
	linked := m.user.Device(j)
	r.devices.Store(linked.Name(), linked)
	r.relinks.Add(1)
	m.giveBack(j)
	return nil
}

// remove takes companion c (device d) off m's account once nothing is on
// its way to it, and waits for it to show a new QR code.
func (r *runner) remove(ctx context.Context, m *member, c harness.WebClient, d *device.Device) error {
	m.gate.Lock()
	defer m.gate.Unlock()
	err := harness.Await(ctx, d.Name()+" to receive what was sent to it", func() error {
		if n := r.live.owed(d.Self()); n > 0 {
			return fmt.Errorf("%d deliveries on their way", n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unlink: %w", err)
	}
	if rand.IntN(2) == 0 {
		err = m.user.Phone.Unlink(ctx, d.Self().Device)
	} else {
		err = c.Logout(ctx)
	}
	if err != nil {
		return fmt.Errorf("unlink %s: %w", d.Name(), err)
	}
	if _, err := harness.CurrentQR(ctx, c); err != nil {
		return fmt.Errorf("unlink %s: %w", d.Name(), err)
	}
	return nil
}

// download fetches and verifies a media message on the device named name,
// retrying while the device is closed by an offline action.
func (r *runner) download(name, chat, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		if last != nil {
			time.Sleep(250 * time.Millisecond)
		}
		v, ok := r.devices.Load(name)
		if !ok {
			last = errors.New("device unknown")
			continue
		}
		d := v.(*device.Device)
		msg, ok := findMessage(d, chat, id)
		if !ok {
			last = errors.New("message not in its chat")
			continue
		}
		rc, err := d.Download(ctx, msg)
		if err != nil {
			last = err
			continue
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("%s: download media %s: %w", name, id, last)
}

func findMessage(d *device.Device, chat, id string) (device.Message, bool) {
	msgs := d.Messages(chat)
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].ID == id {
			return msgs[i], true
		}
	}
	return device.Message{}, false
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// relayFigures are what the runner reads from the relay's /metrics: its
// resident memory and the CPU it has used.
type relayFigures struct{ rss, cpu float64 }

// relayMetrics reads the relay's process figures from the /metrics of
// each of its nodes (at bases, http://host:port) and adds them up; a node
// that does not answer adds zeros.
func relayMetrics(ctx context.Context, bases []string) (f relayFigures) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, base := range bases {
		n := nodeMetrics(ctx, base)
		f.rss, f.cpu = f.rss+n.rss, f.cpu+n.cpu
	}
	return f
}

func nodeMetrics(ctx context.Context, base string) (f relayFigures) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return f
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return f
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, _ := strings.Cut(sc.Text(), " ")
		switch name {
		case "process_resident_memory_bytes":
			f.rss, _ = strconv.ParseFloat(v, 64)
		case "process_cpu_seconds_total":
			f.cpu, _ = strconv.ParseFloat(v, 64)
		}
	}
	return f
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
