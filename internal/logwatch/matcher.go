package logwatch

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/tend-sh/tend/internal/spec"
)

const (
	// MaxLine is the longest line matched: the rest of a longer line, up to
	// its newline, is ignored.
	MaxLine = 64 << 10
	// MaxFireLine is the longest line a Fire carries.
	MaxFireLine = 500
)

// Fire is a rule that fired.
type Fire struct {
	Rule   int            // its index in the rules the Matcher was built from
	Action spec.LogAction // the rule's action
	Line   string         // the line that made it fire, cut to MaxFireLine bytes
	Count  int            // how many records matched within the rule's window
}

// Matcher counts one stream's lines against its rules. It is pure: it reads
// no clock and does no I/O, so the caller passes the time each line was read.
// It is not safe for concurrent use.
type Matcher struct {
	rules   []rule
	records records
}

// rule is one rule's state: the times of its recent matches, as a ring of at
// most Count entries, and when its cooldown ends.
type rule struct {
	spec    spec.LogRule
	re      pattern
	times   []time.Time // the ring, len Count
	head, n int         // oldest entry, entries held
	quiet   time.Time   // matches before this are ignored
	matched bool        // the current record matched already
}

// NewMatcher compiles rules. The zero Count, Window and Cooldown take the
// spec defaults.
func NewMatcher(rules []spec.LogRule) (*Matcher, error) {
	m := &Matcher{rules: make([]rule, len(rules))}
	for i, r := range rules {
		re, err := spec.CompileLogPattern(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("log rule %d: %w", i, err)
		}
		if r.Count < 1 {
			r.Count = spec.DefaultLogCount
		}
		if r.Window <= 0 {
			r.Window = spec.DefaultLogWindow
		}
		if r.Cooldown < 0 {
			r.Cooldown = 0
		}
		m.rules[i] = rule{spec: r, re: newPattern(re), times: make([]time.Time, r.Count)}
	}
	return m, nil
}

// Line takes the next line of the stream, read at now, and returns the rules
// it made fire, or nil. A trailing "\n" or "\r\n" is ignored, and so is all
// beyond MaxLine bytes. Line keeps no reference to line.
//
// A record (a line and the continuation lines after it, see doc.go) counts
// once per rule, at its first line that matches; matches during a rule's
// cooldown count for nothing, though they still use up the record.
func (m *Matcher) Line(line []byte, now time.Time) []Fire {
	line = trim(line)
	newRecord := !m.records.continues(line)
	var fires []Fire
	for i := range m.rules {
		r := &m.rules[i]
		if newRecord {
			r.matched = false
		}
		if r.matched || !r.re.Match(line) {
			continue
		}
		r.matched = true
		if now.Before(r.quiet) {
			continue
		}
		if r.count(now) {
			fires = append(fires, Fire{Rule: i, Action: r.spec.Action, Line: fireLine(line), Count: r.spec.Count})
		}
	}
	return fires
}

// EndRecord makes the next line start a new record, as at the start of a
// stream; the Watcher calls it when a stream ends.
func (m *Matcher) EndRecord() { m.records.end() }

// count records a match at now and reports whether the rule fires: Count
// matches, none more than Window before now. Firing empties the window and
// starts the cooldown.
func (r *rule) count(now time.Time) bool {
	for r.n > 0 && now.Sub(r.times[r.head]) > r.spec.Window {
		r.head = (r.head + 1) % len(r.times)
		r.n--
	}
	if r.n+1 < len(r.times) {
		r.times[(r.head+r.n)%len(r.times)] = now
		r.n++
		return false
	}
	r.head, r.n = 0, 0
	r.quiet = now.Add(r.spec.Cooldown)
	return true
}

func trim(line []byte) []byte {
	if len(line) > MaxLine {
		line = line[:MaxLine]
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// fireLine copies line, cut to MaxFireLine bytes at a character boundary.
func fireLine(line []byte) string {
	if len(line) <= MaxFireLine {
		return string(line)
	}
	n := MaxFireLine
	for n > 0 && !utf8.RuneStart(line[n]) {
		n--
	}
	return string(line[:n])
}
