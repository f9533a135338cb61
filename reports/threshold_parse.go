package reports

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// counters are the run-wide numbers a threshold can name without an
// aggregation: the problem kinds, their sum, and the ledger's totals (so
// "messages>=100" can guard against a run that silently did nothing).
var counters = map[string]func(Totals) int{
	"lost":          func(t Totals) int { return t.Lost },
	"duplicated":    func(t Totals) int { return t.Duplicated },
	"reordered":     func(t Totals) int { return t.Reordered },
	"corrupted":     func(t Totals) int { return t.Corrupted },
	"undecryptable": func(t Totals) int { return t.Undecryptable },
	"late":          func(t Totals) int { return t.Late },
	"unexpected":    func(t Totals) int { return t.Unexpected },
	"problems":      Totals.Problems,
	"messages":      func(t Totals) int { return t.Messages },
	"acked":         func(t Totals) int { return t.Acked },
	"expected":      func(t Totals) int { return t.Expected },
	"delivered":     func(t Totals) int { return t.Delivered },
	"recovered":     func(t Totals) int { return t.Recovered },
}

// rates divide a counter by the total it is a share of: problems and
// deliveries per expected (message, device) pair, acks per message sent.
var rates = map[string]func(Totals) (n, of int){
	"lost":          func(t Totals) (int, int) { return t.Lost, t.Expected },
	"duplicated":    func(t Totals) (int, int) { return t.Duplicated, t.Expected },
	"reordered":     func(t Totals) (int, int) { return t.Reordered, t.Expected },
	"corrupted":     func(t Totals) (int, int) { return t.Corrupted, t.Expected },
	"undecryptable": func(t Totals) (int, int) { return t.Undecryptable, t.Expected },
	"late":          func(t Totals) (int, int) { return t.Late, t.Expected },
	"unexpected":    func(t Totals) (int, int) { return t.Unexpected, t.Expected },
	"problems":      func(t Totals) (int, int) { return t.Problems(), t.Expected },
	"delivered":     func(t Totals) (int, int) { return t.Delivered, t.Expected },
	"recovered":     func(t Totals) (int, int) { return t.Recovered, t.Expected },
	"acked":         func(t Totals) (int, int) { return t.Acked, t.Messages },
}

const rateList = "lost, duplicated, reordered, corrupted, undecryptable, late, unexpected, problems, delivered, recovered (per expected delivery) and acked (per message)"

const counterList = "lost, duplicated, reordered, corrupted, undecryptable, late, unexpected, problems, messages, acked, expected, delivered, recovered"

const aggList = "count, min, max, mean, p50, p90, p99, p99.9 or p(N)"

// ParseError says where a threshold expression stopped making sense and what
// would have been valid there.
type ParseError struct {
	Expr   string
	Column int // 1-based, in characters
	Msg    string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("threshold %q: column %d: %s", e.Expr, e.Column, e.Msg)
}

// lexer walks an expression by byte offset; errors convert to columns.
type lexer struct {
	src string
	pos int
}

func (l *lexer) fail(at int, format string, args ...any) error {
	return &ParseError{Expr: l.src, Column: utf8.RuneCountInString(l.src[:at]) + 1, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) skipSpace() {
	for l.pos < len(l.src) && (l.src[l.pos] == ' ' || l.src[l.pos] == '\t') {
		l.pos++
	}
}

// take consumes the longest run of bytes accepted by ok.
func (l *lexer) take(ok func(byte) bool) string {
	start := l.pos
	for l.pos < len(l.src) && ok(l.src[l.pos]) {
		l.pos++
	}
	return l.src[start:l.pos]
}

// found describes what sits at the cursor, for "expected X, found Y".
func (l *lexer) found() string {
	if l.pos >= len(l.src) {
		return "end of input"
	}
	rest := l.src[l.pos:]
	if i := strings.IndexAny(rest, " \t"); i >= 0 {
		rest = rest[:i]
	}
	return strconv.Quote(rest)
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '/' || c == ':'
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isOpByte(c byte) bool { return c == '<' || c == '>' || c == '=' || c == '!' }

// ParseThreshold parses one expression:
//
//	msg.deliver p99 < 250ms                 a step, an aggregation, a comparison, a duration
//	msg.deliver count >= 10                 count compares with a whole number
//	msg.deliver{label:!fault} p99 < 50ms    a step over the scenarios a scope selects
//	msg.deliver{scenario:"Messaging: ..."} p50<20ms
//	lost == 0                               a counter compares with a whole number
//	undecryptable rate < 0.001              a counter's share of its total, 0 to 1
//
// Spaces between the parts are optional. See docs/reports.md for the grammar.
func ParseThreshold(expr string) (Threshold, error) {
	l := &lexer{src: expr}
	t := Threshold{Expr: strings.TrimSpace(expr)}

	l.skipSpace()
	namePos := l.pos
	if l.pos >= len(l.src) || !isLetter(l.src[l.pos]) {
		return t, l.fail(l.pos, "expected a step name (like msg.deliver) or a counter (%s), found %s", counterList, l.found())
	}
	t.metric = l.take(isNameByte)
	_, isCounter := counters[t.metric]
	l.skipSpace()
	if l.pos < len(l.src) && l.src[l.pos] == '{' {
		sel, err := l.selector()
		if err != nil {
			return t, err
		}
		t.sel = sel
	}
	l.skipSpace()

	atOp := l.pos < len(l.src) && isOpByte(l.src[l.pos])
	switch {
	case isCounter && !atOp && l.pos < len(l.src) && strings.HasPrefix(l.src[l.pos:], "rate"):
		ratePos := l.pos
		if l.take(isNameByte) != "rate" {
			l.pos = ratePos
			return t, l.fail(ratePos, "%s is a counter and takes no aggregation but rate; write %q or %q", t.metric, t.metric+"==0", t.metric+" rate<0.001")
		}
		if _, ok := rates[t.metric]; !ok {
			return t, l.fail(ratePos, "%s has no rate (rates exist for %s)", t.metric, rateList)
		}
		t.agg = "rate"
		l.skipSpace()
	case isCounter && !atOp && l.pos < len(l.src) && isNameByte(l.src[l.pos]):
		return t, l.fail(l.pos, "%s is a counter and takes no aggregation but rate; write %q or %q", t.metric, t.metric+"==0", t.metric+" rate<0.001")
	case isCounter:
		// The comparison follows; a missing one is reported below.
	case atOp:
		return t, l.fail(namePos, "%q is not a counter (%s); a step needs an aggregation, like %q",
			t.metric, counterList, t.metric+" p99<250ms")
	default:
		aggPos := l.pos
		agg := l.take(func(c byte) bool { return isNameByte(c) || c == '(' || c == ')' })
		if agg == "" {
			return t, l.fail(l.pos, "expected an aggregation (%s), found %s", aggList, l.found())
		}
		if err := t.setAgg(agg); err != nil {
			return t, l.fail(aggPos, "%v", err)
		}
		l.skipSpace()
	}

	opPos := l.pos
	op := l.take(isOpByte)
	switch op {
	case "<", "<=", ">", ">=", "==", "!=":
		t.op = op
	case "=":
		return t, l.fail(opPos, "expected a comparison (<, <=, >, >=, ==, !=), found \"=\" (did you mean ==?)")
	default:
		l.pos = opPos
		return t, l.fail(opPos, "expected a comparison (<, <=, >, >=, ==, !=), found %s", l.found())
	}
	l.skipSpace()

	valPos := l.pos
	val := l.take(func(c byte) bool { return c != ' ' && c != '\t' })
	l.pos = valPos
	switch {
	case t.dur:
		d, err := time.ParseDuration(val)
		if err != nil || d < 0 {
			return t, l.fail(valPos, "expected a duration with a unit (ns, µs, ms, s, m, h) like 250ms, found %s", l.found())
		}
		t.value = float64(d)
	case t.agg == "rate":
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || v < 0 || v > 1 || math.IsNaN(v) {
			return t, l.fail(valPos, "expected a rate between 0 and 1 like 0.001, found %s", l.found())
		}
		t.value = v
	default:
		n, err := strconv.ParseUint(val, 10, 63)
		if err != nil {
			return t, l.fail(valPos, "expected a whole number like 0, found %s", l.found())
		}
		t.value = float64(n)
	}
	l.pos += len(val)
	l.skipSpace()
	if l.pos < len(l.src) {
		return t, l.fail(l.pos, "unexpected %s after the value", l.found())
	}
	return t, nil
}

// selector reads a scope in braces: {scenario:"Messaging: ...",label:fault,label:!fault}.
func (l *lexer) selector() (Selector, error) {
	var sel Selector
	l.pos++ // the {
	for {
		l.skipSpace()
		keyPos := l.pos
		key := l.take(isLetter)
		l.skipSpace()
		if key != "scenario" && key != "label" {
			l.pos = keyPos
			return sel, l.fail(keyPos, "expected scenario:\"name\" or label:name (or label:!name) in {...}, found %s", l.found())
		}
		if l.pos >= len(l.src) || l.src[l.pos] != ':' {
			return sel, l.fail(l.pos, "expected : after %s, found %s", key, l.found())
		}
		l.pos++
		l.skipSpace()
		valPos := l.pos
		not := l.pos < len(l.src) && l.src[l.pos] == '!'
		if not {
			l.pos++
		}
		val, err := l.selectorValue()
		if err != nil {
			return sel, err
		}
		switch {
		case val == "":
			return sel, l.fail(valPos, "expected a %s name after %s:, found %s", key, key, l.found())
		case key == "scenario" && sel.Scenario != "":
			return sel, l.fail(keyPos, "a scope names at most one scenario")
		case key == "scenario" && not:
			return sel, l.fail(valPos, "a scenario cannot be negated; use a label")
		case key == "scenario":
			sel.Scenario = val
		case not:
			sel.Without = append(sel.Without, val)
		default:
			sel.With = append(sel.With, val)
		}
		l.skipSpace()
		if l.pos < len(l.src) && l.src[l.pos] == ',' {
			l.pos++
			continue
		}
		if l.pos < len(l.src) && l.src[l.pos] == '}' {
			l.pos++
			return sel, nil
		}
		return sel, l.fail(l.pos, "expected , or } in the scope, found %s", l.found())
	}
}

// selectorValue reads a name in a scope: a double-quoted string (for
// scenario names with spaces and colons) or a bare label.
func (l *lexer) selectorValue() (string, error) {
	if l.pos < len(l.src) && l.src[l.pos] == '"' {
		start := l.pos
		for l.pos++; l.pos < len(l.src) && l.src[l.pos] != '"'; l.pos++ {
			if l.src[l.pos] == '\\' {
				l.pos++
			}
		}
		if l.pos >= len(l.src) {
			return "", l.fail(start, "unterminated quoted name")
		}
		l.pos++
		v, err := strconv.Unquote(l.src[start:l.pos])
		if err != nil {
			return "", l.fail(start, "bad quoted name: %v", err)
		}
		return v, nil
	}
	return l.take(func(c byte) bool { return isNameByte(c) && c != ':' }), nil
}

// setAgg reads an aggregation name: count, min, max, mean (avg), med, pN,
// p(N), and p999 for the 99.9th percentile, as latency people write it.
func (t *Threshold) setAgg(agg string) error {
	t.dur = true
	switch agg {
	case "count":
		t.agg, t.dur = "count", false
		return nil
	case "min", "max", "mean":
		t.agg = agg
		return nil
	case "avg":
		t.agg = "mean"
		return nil
	case "med":
		t.agg, t.pct = "p50", 50
		return nil
	case "p999":
		t.agg, t.pct = "p99.9", 99.9
		return nil
	}
	if num, ok := strings.CutPrefix(agg, "p"); ok {
		if inner, ok := strings.CutPrefix(num, "("); ok {
			num, ok = strings.CutSuffix(inner, ")")
			if !ok {
				return fmt.Errorf("expected ) to close %q", agg)
			}
		}
		p, err := strconv.ParseFloat(num, 64)
		if err == nil && p > 0 && p <= 100 {
			t.agg, t.pct = "p"+strconv.FormatFloat(p, 'f', -1, 64), p
			return nil
		}
		return fmt.Errorf("percentile %q must be a number in (0, 100], like p99 or p(99.9)", agg)
	}
	return fmt.Errorf("expected an aggregation (%s), found %q", aggList, agg)
}

// Thresholds is a list of thresholds that a repeatable command-line flag can
// fill: it implements flag.Value (and pflag's Type).
type Thresholds []Threshold

// Set parses one expression and appends it.
func (ts *Thresholds) Set(expr string) error {
	t, err := ParseThreshold(expr)
	if err != nil {
		return err
	}
	*ts = append(*ts, t)
	return nil
}

func (ts *Thresholds) String() string {
	if ts == nil {
		return ""
	}
	s := make([]string, len(*ts))
	for i, t := range *ts {
		s[i] = t.Expr
	}
	return strings.Join(s, ", ")
}

// Type names the flag's value for help text.
func (ts *Thresholds) Type() string { return "threshold" }

// ReadThresholds parses one expression per line; blank lines and everything
// after a # are ignored. name prefixes errors (file:line: ...).
func ReadThresholds(r io.Reader, name string) (Thresholds, error) {
	var ts Thresholds
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if err := ts.Set(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return ts, nil
}

// LoadThresholds reads a threshold file (see ReadThresholds).
func LoadThresholds(path string) (Thresholds, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("thresholds: %w", err)
	}
	defer f.Close()
	return ReadThresholds(f, path)
}
