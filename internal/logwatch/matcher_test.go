package logwatch

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

var t0 = time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)

// step is a line read at t0+at, and the rules it should make fire.
type step struct {
	at    time.Duration
	line  string
	fires []int
	end   bool // end the record before the line, as a reconnect does
}

func logRule(pattern string, count int, window, cooldown time.Duration) spec.LogRule {
	return spec.LogRule{Pattern: pattern, Count: count, Window: window, Cooldown: cooldown, Action: spec.LogReplace}
}

// lines makes steps one second apart from a trace, firing nothing.
func lines(from time.Duration, trace string) []step {
	var s []step
	for i, l := range strings.Split(strings.TrimPrefix(trace, "\n"), "\n") {
		s = append(s, step{at: from + time.Duration(i)*time.Second, line: l})
	}
	return s
}

func withFire(s []step, i int, rules ...int) []step {
	s[i].fires = rules
	return s
}

const javaTrace = `Exception in thread "main" java.lang.IllegalStateException: boom
	at com.example.App.run(App.java:10)
Caused by: java.lang.NullPointerException: null
	at com.example.Dao.load(Dao.java:20)
	... 2 more`

const goPanicTrace = `panic: something went wrong

goroutine 1 [running]:
main.(*Server).handle(0xc0000a6000)
	/app/server.go:42 +0x1d
panic({0x4b4f40?, 0xc000012018?})
	/usr/local/go/src/runtime/panic.go:785 +0x132
runtime.gopanic(...)
created by main.start in goroutine 1
	/app/main.go:20 +0x4f`

const pythonTrace = `Traceback (most recent call last):
  File "/app/main.py", line 4, in <module>
    1/0
ZeroDivisionError: division by zero

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/main.py", line 6, in <module>
    raise ValueError("bad")
ValueError: bad`

func TestMatcher(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	cases := []struct {
		name  string
		rules []spec.LogRule
		steps []step
	}{
		{"count within window", []spec.LogRule{logRule("FATAL", 3, time.Minute, time.Minute)}, []step{
			{at: 0, line: "FATAL a"}, {at: 10 * time.Second, line: "INFO b"},
			{at: 20 * time.Second, line: "FATAL c"}, {at: 30 * time.Second, line: "FATAL d", fires: []int{0}},
		}},
		{"window is inclusive", []spec.LogRule{logRule("FATAL", 3, time.Minute, 0)}, []step{
			{at: 0, line: "FATAL"}, {at: 30 * time.Second, line: "FATAL"}, {at: time.Minute, line: "FATAL", fires: []int{0}},
		}},
		{"old matches leave the window", []spec.LogRule{logRule("FATAL", 3, time.Minute, 0)}, []step{
			{at: 0, line: "FATAL"}, {at: 40 * time.Second, line: "FATAL"}, {at: 70 * time.Second, line: "FATAL"},
			{at: 80 * time.Second, line: "FATAL", fires: []int{0}},
		}},
		{"cooldown ignores matches, then the window starts empty", []spec.LogRule{logRule("FATAL", 2, time.Minute, 10*time.Second)}, []step{
			{at: 0, line: "FATAL"}, {at: time.Second, line: "FATAL", fires: []int{0}},
			{at: 5 * time.Second, line: "FATAL"}, {at: 9 * time.Second, line: "FATAL"},
			{at: 11 * time.Second, line: "FATAL"}, {at: 12 * time.Second, line: "FATAL", fires: []int{0}},
		}},
		{"cooldown ends at fire time plus cooldown", []spec.LogRule{logRule("FATAL", 1, time.Minute, time.Minute)}, []step{
			{at: 0, line: "FATAL", fires: []int{0}}, {at: 59 * time.Second, line: "FATAL"},
			{at: time.Minute, line: "FATAL", fires: []int{0}},
		}},
		{"zero cooldown fires on every match", []spec.LogRule{logRule("FATAL", 1, time.Minute, 0)}, []step{
			{at: 0, line: "FATAL", fires: []int{0}}, {at: 0, line: "FATAL", fires: []int{0}},
		}},
		{"two rules on one line both fire", []spec.LogRule{logRule("FATAL", 1, time.Minute, 0), logRule("database", 1, time.Minute, 0)}, []step{
			{at: 0, line: "FATAL database gone", fires: []int{0, 1}}, {at: 0, line: "database slow", fires: []int{1}},
		}},
		{"an indented line continues a record that matched", []spec.LogRule{logRule("ERROR", 2, time.Minute, 0)}, []step{
			{at: 0, line: "ERROR x"}, {at: 0, line: "\tERROR y"}, {at: 0, line: "ERROR z", fires: []int{0}},
		}},
		{"a continuation counts when the record had not matched", []spec.LogRule{logRule("NullPointer", 1, time.Minute, 0)},
			withFire(lines(0, javaTrace), 2, 0)},
		{"a match in cooldown uses up its record", []spec.LogRule{logRule("ERR", 1, time.Minute, 10*time.Second)}, []step{
			{at: 0, line: "ERR a", fires: []int{0}}, {at: 5 * time.Second, line: "ERR b"},
			{at: 11 * time.Second, line: "\tERR c"}, {at: 12 * time.Second, line: "ERR d", fires: []int{0}},
		}},
		{"a Java trace counts once", []spec.LogRule{logRule("Exception", 2, time.Minute, 0)},
			withFire(append(lines(0, javaTrace), lines(10*time.Second, javaTrace)...), 5, 0)},
		{"a Go panic counts once", []spec.LogRule{logRule("panic", 2, time.Minute, 0)},
			withFire(append(append(lines(0, goPanicTrace), step{at: 20 * time.Second, line: "listening"}), lines(21*time.Second, goPanicTrace)...), 11, 0)},
		{"a Python traceback counts once, at its exception line", []spec.LogRule{logRule("Error", 1, time.Minute, time.Hour)},
			withFire(lines(0, pythonTrace), 3, 0)},
		{"a chained Python traceback counts once", []spec.LogRule{logRule("Error", 2, time.Minute, 0)},
			withFire(append(lines(0, pythonTrace), lines(20*time.Second, pythonTrace)...), 14, 0)},
		{"a reconnect ends the record", []spec.LogRule{logRule("ERR", 2, time.Minute, 0)}, []step{
			{at: 0, line: "ERR a"}, {at: 0, line: "\tERR b", end: true, fires: []int{0}},
		}},
		{"a match beyond MaxLine is not seen", []spec.LogRule{logRule("FATAL", 1, time.Minute, 0)}, []step{
			{at: 0, line: long + "FATAL"}, {at: 0, line: long[:MaxLine-5] + "FATAL", fires: []int{0}},
		}},
		{"CRLF is trimmed", []spec.LogRule{logRule("boom$", 1, time.Minute, 0)}, []step{
			{at: 0, line: "boom\r\n", fires: []int{0}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewMatcher(c.rules)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range c.steps {
				if s.end {
					m.EndRecord()
				}
				var got []int
				for _, f := range m.Line([]byte(s.line), t0.Add(s.at)) {
					got = append(got, f.Rule)
				}
				if !slices.Equal(got, s.fires) {
					t.Errorf("step %d %q at %s: fired %v, want %v", i, cut(s.line), s.at, got, s.fires)
				}
			}
		})
	}
}

func cut(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func TestFire(t *testing.T) {
	m, err := NewMatcher([]spec.LogRule{
		logRule("nothing", 1, time.Minute, 0),
		{Pattern: "FATAL", Count: 2, Window: time.Minute, Action: spec.LogRestartDependents},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Line([]byte("FATAL first\n"), t0)
	// 499 bytes, then a 2-byte character that would straddle the cut.
	line := "FATAL " + strings.Repeat("y", MaxFireLine-1-len("FATAL ")) + "é and more\n"
	fires := m.Line([]byte(line), t0)
	want := []Fire{{Rule: 1, Action: spec.LogRestartDependents, Line: line[:MaxFireLine-1], Count: 2}}
	if !slices.Equal(fires, want) {
		t.Errorf("fires = %+v\nwant %+v", fires, want)
	}
}

func TestNewMatcher(t *testing.T) {
	if _, err := NewMatcher([]spec.LogRule{{Pattern: "ok"}, {Pattern: "("}}); err == nil || !strings.Contains(err.Error(), "log rule 1") {
		t.Errorf("err = %v, want one naming log rule 1", err)
	}
	m, err := NewMatcher([]spec.LogRule{{Pattern: "x"}}) // defaults: 1 in a minute, cooldown 0
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Line([]byte("x"), t0)) != 1 || len(m.Line([]byte("x"), t0)) != 1 {
		t.Error("a rule with the zero Count does not fire on each match")
	}
}

func TestLineAllocs(t *testing.T) {
	m, _ := NewMatcher([]spec.LogRule{logRule("FATAL|panic:", 3, time.Minute, 0), logRule(`(?i)timeout`, 3, time.Minute, 0)})
	line := []byte("level=info msg=\"request served\" bytes=1234\n")
	if n := testing.AllocsPerRun(100, func() { m.Line(line, t0) }); n != 0 {
		t.Errorf("Line allocates %v times on a line that matches nothing", n)
	}
}
