// Package reports scores a linksim run: it records what every device did on one
// monotonic clock, checks the message ledger (lost, duplicated, reordered,
// corrupted, undecryptable, late, unexpected), keeps latency histograms per
// step (for the run and per scenario), evaluates k6-style thresholds, and
// renders the result as a console summary, report.json, junit.xml, a
// self-contained report.html, a latency CSV, and event streams (NDJSON, CSV)
// written while the run records.
//
// A run uses it in four moves:
//
//	rec := reports.NewRecorder()                 // the run's, shared by every device
//	sc := rec.ChildFor("Messaging: ...", labels) // one per scenario: its events carry its name
//	sc.Send("alice/phone", id, chat, targets, reports.DigestOf(text))
//	...                                          // acks, decrypts, receipts, steps
//	r := reports.New(rec, reports.Config{Name: "smoke", Relay: "embedded"})
//	r.Evaluate(thresholds)                       // fills r.Thresholds
//	err := r.WriteDir("out")                     // report.json, junit.xml, report.html
//
// The package imports no other linksim package, so the load runner, the CLI and
// external tools can read and merge reports without pulling in the harness.
// The file formats are documented in docs/reports.md.
package reports
