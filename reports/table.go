package reports

import (
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// ConsoleWidth is the widest line the console writes: a CI log
// viewer or an 80-column-plus terminal shows every row whole.
const ConsoleWidth = 120

// minCell is the narrowest a shrunk table column gets: enough to recognise
// a scenario or step name by its start.
const minCell = 12

// table is an aligned text table whose rows fit a width: when they would
// not, the widest column is shortened (its cells end in "…") until they do,
// so a long scenario name costs its own tail, not the columns after it.
type table struct {
	rows [][]string // the first is the header
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer, indent string, width int) {
	if len(t.rows) == 0 {
		return
	}
	widths := make([]int, len(t.rows[0]))
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	// The last column is not padded, so only the others and the gaps count
	// towards the width along with it.
	const gap = 2
	total := func() int {
		n := utf8.RuneCountInString(indent) + gap*(len(widths)-1)
		for _, v := range widths {
			n += v
		}
		return n
	}
	for total() > width {
		i := slices.Index(widths, slices.Max(widths))
		if widths[i] <= minCell {
			break // nothing left to shorten; lines are cut below
		}
		widths[i]--
	}
	for _, r := range t.rows {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range r {
			c = Ellipsize(c, widths[i])
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+gap))
			}
		}
		io.WriteString(w, Ellipsize(strings.TrimRight(b.String(), " "), width)+"\n")
	}
}

// Ellipsize shortens s to at most n runes, ending in "…" when cut.
func Ellipsize(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// wrap breaks s after commas into lines of at most width runes, the first
// starting with head and the rest indented to line up after it.
func wrap(head, s string, width int) string {
	pad := strings.Repeat(" ", utf8.RuneCountInString(head))
	var out []string
	line := head
	for i, part := range strings.SplitAfter(s, ", ") {
		if i > 0 && utf8.RuneCountInString(line+strings.TrimRight(part, " ")) > width {
			out = append(out, strings.TrimRight(line, " "))
			line = pad
		}
		line += part
	}
	out = append(out, Ellipsize(line, width))
	return strings.Join(out, "\n") + "\n"
}
