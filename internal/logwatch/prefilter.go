package logwatch

import (
	"bytes"
	"regexp"
	"regexp/syntax"
	"slices"
	"unicode"
	"unicode/utf8"
)

// pattern is a rule's regular expression behind a cheap test: Go's regexp
// runs at some tens of MB/s, while most lines contain none of the literals a
// match needs (the "FATAL" or "panic:" of "FATAL|panic:"), which bytes.Index
// rules out at memory speed.
type pattern struct {
	re    *regexp.Regexp
	needs []literal // a match contains one of these; nil: no such set is known
}

// literal is a string a match contains, ignoring ASCII case if fold (and
// then written in lower case).
type literal struct {
	b    []byte
	fold bool
}

func newPattern(re *regexp.Regexp) pattern {
	p := pattern{re: re}
	if tree, err := syntax.Parse(re.String(), syntax.Perl); err == nil {
		p.needs = required(tree.Simplify())
	}
	return p
}

func (p pattern) Match(line []byte) bool {
	if p.needs != nil && !slices.ContainsFunc(p.needs, func(l literal) bool { return l.in(line) }) {
		return false
	}
	return p.re.Match(line)
}

func (l literal) in(line []byte) bool {
	if !l.fold {
		return bytes.Contains(line, l.b)
	}
	return containsFold(line, l.b)
}

// maxNeeds bounds the literal set, beyond which the regexp is as quick.
const maxNeeds = 16

// required returns literals one of which every match of re contains, or nil
// when it finds none.
func required(re *syntax.Regexp) []literal {
	switch re.Op {
	case syntax.OpLiteral:
		return literalOf(re)
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min < 1 {
			return nil
		}
		return required(re.Sub[0])
	case syntax.OpAlternate:
		var all []literal
		for _, sub := range re.Sub {
			lits := required(sub)
			if lits == nil || len(all)+len(lits) > maxNeeds {
				return nil
			}
			all = append(all, lits...)
		}
		return all
	case syntax.OpConcat:
		// Any one factor's set will do; the one whose shortest literal is
		// longest rules out the most lines.
		var best []literal
		for _, sub := range re.Sub {
			if lits := required(sub); lits != nil && shortest(lits) > shortest(best) {
				best = lits
			}
		}
		return best
	}
	return nil
}

// literalOf returns the literal of an OpLiteral. A case-folded one is kept
// only if no letter of it folds to a non-ASCII one (as "k" does to the
// Kelvin sign): then ignoring ASCII case is exact.
func literalOf(re *syntax.Regexp) []literal {
	if len(re.Rune) == 0 {
		return nil
	}
	if re.Flags&syntax.FoldCase == 0 {
		return []literal{{b: []byte(string(re.Rune))}}
	}
	b := make([]byte, 0, len(re.Rune))
	for _, r := range re.Rune {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf {
				return nil
			}
		}
		if r >= utf8.RuneSelf {
			return nil
		}
		b = append(b, byte(unicode.ToLower(r)))
	}
	return []literal{{b: b, fold: true}}
}

func shortest(lits []literal) int {
	if lits == nil {
		return 0
	}
	n := len(lits[0].b)
	for _, l := range lits[1:] {
		n = min(n, len(l.b))
	}
	return n
}

// containsFold reports whether s contains lit (lower-case ASCII) ignoring
// ASCII case. It finds the candidates by their first byte, in either case,
// with bytes.IndexByte.
func containsFold(s, lit []byte) bool {
	lo, up := lit[0], byte(unicode.ToUpper(rune(lit[0])))
	next := func(from int, c byte) int {
		if i := bytes.IndexByte(s[from:], c); i >= 0 {
			return from + i
		}
		return -1
	}
	a, b := next(0, lo), -1
	if up != lo {
		b = next(0, up)
	}
	for a >= 0 || b >= 0 {
		var i int
		if b < 0 || (a >= 0 && a < b) {
			i, a = a, next(a+1, lo)
		} else {
			i, b = b, next(b+1, up)
		}
		if len(s)-i < len(lit) {
			return false
		}
		if bytes.EqualFold(s[i:i+len(lit)], lit) {
			return true
		}
	}
	return false
}
