package docker

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// ignorer decides which files of a build context stay out of it, as the docker
// CLI reads .dockerignore: the last pattern that matches a path (or one of its
// parent directories) decides; a pattern starting with ! lets back in what an
// earlier one left out. `*` and `?` stop at a slash, `**` crosses any number of
// directories.
type ignorer struct {
	patterns   []ignorePattern
	exceptions bool // some pattern starts with !: an excluded directory may hold files that are not
}

type ignorePattern struct {
	text      string
	re        *regexp.Regexp
	exception bool
}

// parseDockerignore reads .dockerignore lines: blank lines and # comments are
// skipped, each pattern is cleaned and made relative to the context.
func parseDockerignore(r io.Reader) (*ignorer, error) {
	ig := &ignorer{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exception := strings.HasPrefix(line, "!")
		pattern := strings.TrimSpace(strings.TrimPrefix(line, "!"))
		if pattern == "" {
			continue
		}
		pattern = filepath.ToSlash(filepath.Clean(pattern))
		if len(pattern) > 1 && pattern[0] == '/' {
			pattern = pattern[1:]
		}
		re, err := regexp.Compile(ignoreRegexp(pattern))
		if err != nil {
			return nil, fmt.Errorf("invalid pattern %q", line)
		}
		ig.patterns = append(ig.patterns, ignorePattern{text: pattern, re: re, exception: exception})
		ig.exceptions = ig.exceptions || exception
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ig, nil
}

// ignoreRegexp translates a cleaned pattern into an anchored regular expression,
// rule for rule as github.com/moby/patternmatcher does.
func ignoreRegexp(pattern string) string {
	var b strings.Builder
	b.WriteString("^")
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		switch ch := rs[i]; {
		case ch == '*' && i+1 < len(rs) && rs[i+1] == '*':
			i++
			if i+1 < len(rs) && rs[i+1] == '/' {
				i++ // **/ is **
			}
			if i+1 == len(rs) {
				b.WriteString(".*") // a trailing ** takes everything below
			} else {
				b.WriteString("(.*/)?") // any number of directories, none included
			}
		case ch == '*':
			b.WriteString("[^/]*")
		case ch == '?':
			b.WriteString("[^/]")
		case strings.ContainsRune(".+()|{}$", ch):
			b.WriteString(`\` + string(ch))
		case ch == '\\':
			if i+1 < len(rs) {
				i++
				b.WriteString(`\` + string(rs[i]))
			} else {
				b.WriteString(`\\`)
			}
		default:
			b.WriteRune(ch) // [ and ] open and close a class, as in filepath.Match
		}
	}
	b.WriteString("$")
	return b.String()
}

// excludes reports whether file (slash-separated, relative to the context) is
// left out of the context.
func (ig *ignorer) excludes(file string) bool {
	if ig == nil {
		return false
	}
	var parents []string
	if dir := path.Dir(file); dir != "." {
		parents = strings.Split(dir, "/")
	}
	excluded := false
	for _, p := range ig.patterns {
		if p.exception != excluded {
			continue // only a later exception can change an exclusion, and the reverse
		}
		match := p.re.MatchString(file)
		for i := 0; !match && i < len(parents); i++ {
			match = p.re.MatchString(strings.Join(parents[:i+1], "/"))
		}
		if match {
			excluded = !p.exception
		}
	}
	return excluded
}
