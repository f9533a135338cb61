package harness

import (
	"errors"
	"fmt"
)

// Expect is what a flow's ledger must hold once the flow is done, as the
// flow is written: the messages it sends, the (message, device) deliveries
// they owe, and the devices owed at least one. A ledger holding fewer means
// the flow did not run as written or its events never reached the
// recorder; judging such a ledger would pass for nothing. The zero Expect
// declares a flow that sends no message.
type Expect struct {
	Messages   int // sends recorded
	Deliveries int // (message, device) pairs owed, each to be delivered
	Devices    int // distinct devices owed at least one message
}

func (x Expect) String() string {
	return fmt.Sprintf("%d messages delivered as %d copies to %d devices", x.Messages, x.Deliveries, x.Devices)
}

// CheckExpected checks the ledger against what the flow declares: exactly
// x.Messages sent, owing x.Deliveries deliveries to x.Devices devices, every
// one of them delivered, and nothing wrong (Check).
func (e *Env) CheckExpected(x Expect) error {
	l := e.Ledger()
	t := l.Totals
	saw := Expect{Messages: t.Messages, Deliveries: t.Expected, Devices: len(l.Targets())}
	switch {
	case x == (Expect{}) && saw.Messages > 0:
		return fmt.Errorf("ledger: the flow declares no message, yet the ledger saw %s: declare them in its Expect", saw)
	case x == (Expect{}):
		return nil
	case t.Messages == 0:
		return fmt.Errorf("ledger: expected %s; the ledger saw none: event wiring broken?", x)
	case saw != x:
		return fmt.Errorf("ledger: expected %s; the ledger saw %s", x, saw)
	}
	return e.Check() // clean means every copy owed was delivered
}

// errEmptyLedger is Check's verdict on a ledger without a message: there is
// nothing to judge, which must not read as "clean".
var errEmptyLedger = errors.New("ledger: no message was recorded sent, so nothing can be judged: event wiring broken?")
