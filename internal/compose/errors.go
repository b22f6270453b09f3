package compose

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/tend-sh/tend/internal/spec"
)

// errorf builds an Error about one key of one service; Load adds the file.
func errorf(service, key, format string, args ...any) *spec.Error {
	return &spec.Error{Service: service, Key: key, Message: fmt.Sprintf(format, args...)}
}

// shown is a value as an error quotes it: as it is, or quoted when it holds
// a line break or another control character, so the message stays on one line.
func shown(v any) string {
	s := fmt.Sprint(v)
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// notHonoured is the one wording of a warning for a key tend ignores.
func notHonoured(service, key string) spec.Warning {
	return spec.Warning{Service: service, Key: key, Message: "not honoured by tend, ignored"}
}

// inFile names file in err when err is an *Error that does not name one yet.
func inFile(err error, file string) error {
	var e *spec.Error
	if errors.As(err, &e) && e.File == "" {
		e.File = file
	}
	return err
}

// reason is the system's words for a failed file operation, without the path that
// the message around it already names.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// oneLine folds a multi-line message (compose-go joins errors with newlines) so
// that every error tend prints is one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// splitExtends moves the service of compose-go's `cannot extend service "app" in
// FILE: REASON` into Service and Key, and names FILE in the message only when it is
// another file than the error's.
func splitExtends(e *spec.Error) {
	rest, ok := strings.CutPrefix(e.Message, "cannot extend service ")
	if !ok {
		return
	}
	service, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return
	}
	file, reason, ok := strings.Cut(strings.TrimPrefix(rest[len(service):], " in "), ": ")
	if !ok {
		return
	}
	e.Service, _ = strconv.Unquote(service)
	e.Key, e.Message = "extends", reason
	if file != e.File {
		e.Message += " in " + file
	}
}

// reword puts compose-go's messages that name a service their own way into the
// `services.NAME.KEY DETAIL` shape that splitServiceKey reads.
func reword(e *spec.Error) {
	for _, r := range rewordings {
		if m := r.re.FindStringSubmatch(e.Message); m != nil {
			e.Message = r.re.ReplaceAllString(m[0], r.to)
			return
		}
	}
}

var rewordings = []struct {
	re *regexp.Regexp
	to string
}{
	// mapstructure: decoding failed due to the following error(s): 'services[web].environment' ...
	{regexp.MustCompile(`^decoding failed due to the following error\(s\): 'services\[([^\]]+)\]\.([^']+)' (.*)$`), "services.$1.$2 $3"},
	{regexp.MustCompile(`^service volume services\.([^ ]+)\.volumes\.\[(\d+)\] is (.*)$`), "services.$1.volumes.$2 $3"},
	{regexp.MustCompile(`^extends\.([^ ]+)\.service is required$`), "services.$1.extends.service required"},
	// the file itself is a scalar or a list: compose-go names its own Go type
	{regexp.MustCompile(`^invalid YAML: construct errors: line \d+: cannot construct !!\w+( .*)? into cli\.named$|^top-level object must be a mapping$`), "the file must be a mapping of top-level keys (services:, networks:, ...)"},
	{regexp.MustCompile("^`include` must be a list, got .*$"), "include: must be a list of files"},
}

// listOrMapping are the service keys compose takes as a list or as a mapping.
var listOrMapping = map[string]bool{"labels": true, "environment": true, "depends_on": true, "networks": true,
	"extra_hosts": true, "sysctls": true, "annotations": true, "build.args": true, "build.labels": true,
	"build.extra_hosts": true, "deploy.labels": true}

// schemaGrammar mends the articles of the JSON schema checker's "must be a ..." messages.
var schemaGrammar = strings.NewReplacer("must be a array", "must be a list", "must be a integer", "must be an integer", "must be a object", "must be a mapping")
