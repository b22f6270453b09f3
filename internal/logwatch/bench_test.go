package logwatch

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// floodBlock is about 1 MiB of ordinary log lines, with a match of each
// rule every few thousand lines and a short Java trace now and then.
func floodBlock() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 1<<20; i++ {
		switch {
		case i%5000 == 4999:
			fmt.Fprintf(&b, "2025-01-02T10:00:00.%06dZ FATAL cannot reach the database after %d tries\n", i, i)
		case i%3000 == 2999:
			fmt.Fprintf(&b, "level=error msg=\"upstream timeout\" req=%d\n\tat com.example.Client.call(Client.java:42)\n", i)
		case i%2 == 0:
			fmt.Fprintf(&b, "2025-01-02T10:00:00.%06dZ INFO  http: GET /api/v1/items/%d 200 1.2ms remote=10.0.0.%d ua=\"curl/8.5.0\"\n", i, i, i%250)
		default:
			fmt.Fprintf(&b, "level=info ts=2025-01-02T10:00:00Z caller=handler.go:%d msg=\"request served\" bytes=%d\n", i%900, i*7)
		}
	}
	return b.Bytes()
}

// BenchmarkMatcherFlood feeds lines through a Matcher with two rules; each
// op is one floodBlock (1 MiB), so `-benchtime 100x` feeds 100 MB. The
// "literals" rules are ruled out on most lines by their literals, the
// "case-folded" ones too, ignoring ASCII case; the "regexp-only" ones need
// no literal, so every line goes to the regexp. Figures: see doc.go.
func BenchmarkMatcherFlood(b *testing.B) {
	for _, c := range []struct {
		name  string
		rules []string
	}{
		{"literals", []string{"FATAL|panic:", `level=error.*timeout`}},
		{"case-folded", []string{"(?i)fatal|panic:", `(?i)level=error.*timeout`}},
		{"regexp-only", []string{`[A-Z]{6,}`, `\d{4,}ms`}},
	} {
		b.Run(c.name, func(b *testing.B) {
			m, err := NewMatcher([]spec.LogRule{
				{Pattern: c.rules[0], Count: 3, Window: time.Minute, Action: spec.LogReplace, Cooldown: time.Minute},
				{Pattern: c.rules[1], Count: 5, Window: time.Minute, Action: spec.LogNotify},
			})
			if err != nil {
				b.Fatal(err)
			}
			floodMatcher(b, m)
		})
	}
}

func floodMatcher(b *testing.B, m *Matcher) {
	block := floodBlock()
	now := time.Date(2025, 1, 2, 10, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		rest := block
		for len(rest) > 0 {
			i := bytes.IndexByte(rest, '\n')
			m.Line(rest[:i+1], now)
			rest = rest[i+1:]
			now = now.Add(time.Microsecond)
		}
	}
}
