package logwatch

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"testing"
)

func TestRequired(t *testing.T) {
	cases := []struct {
		pattern string
		want    string // fmt of the literal set
	}{
		{"FATAL", "[FATAL]"},
		{"FATAL|panic:", "[FATAL panic:]"},
		{"error|err", "[err]"}, // simplified to err(?:or)?
		{`level=error.*timeout`, "[level=error]"},
		{`(a|bc)+xyz`, "[xyz]"},
		{`x{2,}`, "[x]"},
		{`ab?`, "[a]"},
		{`(?i)fatal`, "[{fatal true}]"},
		{`(?i)FATAL|Panic`, "[{fatal true} {panic true}]"},
		{`(?i)kill`, "[]"}, // k folds to the Kelvin sign
		{`(?i)é`, "[]"},
		{`\d+ errors`, "[ errors]"},
		{`^$`, "[]"},
		{`a*`, "[]"},
		{`a|b*`, "[]"},
		{"(a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q)z", "[z]"},
	}
	for _, c := range cases {
		tree, err := syntax.Parse(c.pattern, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		var lits []string
		for _, l := range required(tree.Simplify()) {
			if l.fold {
				lits = append(lits, fmt.Sprintf("{%s true}", l.b))
			} else {
				lits = append(lits, string(l.b))
			}
		}
		if got := fmt.Sprint(lits); got != c.want {
			t.Errorf("required(%q) = %s, want %s", c.pattern, got, c.want)
		}
	}
}

// The literal test only rules lines out: on every line, pattern.Match says
// what the regexp says.
func TestPatternMatchesAsRegexp(t *testing.T) {
	patterns := []string{"FATAL|panic:", "err(or)?", `level=error.*timeout`, `(?i)fatal`, `^panic: `, `(a|bc)+xyz`, `é+`,
		`(?i)error`, `(?i)a=1`, `(?i)kill`}
	lines := []string{"", "FATAL", "fatal", "a panic: x", "panic: x", "err", "error", "level=error timeout",
		"timeout level=error", "bcaxyz", "xyz", "éé", "e", "ERROR", "eRrOr", "eeeeRRor", "EEEerro", "errorr",
		"A=1", "a=2", "\u212aill", "KILL", "erro\xc3"}
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		pat := newPattern(re)
		for _, l := range lines {
			if got, want := pat.Match([]byte(l)), re.MatchString(l); got != want {
				t.Errorf("%q on %q: %v, regexp says %v", p, l, got, want)
			}
		}
	}
}
