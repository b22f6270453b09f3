package spec_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/spec"
)

// FuzzValidate feeds Validate projects decoded from arbitrary JSON, as the
// daemon decodes them from `tend up`'s request: it never panics, and answers
// nil or one *spec.Error on one line. The seeds are projects of the shapes
// tests use; testdata/fuzz/FuzzValidate keeps what the fuzzer found.
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		`{"name":"demo","services":[{"name":"web","image":"x","replicas":2}]}`,
		`{"name":"demo","services":[{"name":"web","image":"x","ports":[{"target":80,"published":"8080","protocol":"tcp"}]}]}`,
		`{"name":"demo","services":[{"name":"a","image":"x","depends_on":{"b":{"condition":"service_healthy"}}},{"name":"b","image":"x"}]}`,
		`{"name":"demo","networks":[{"key":"default","name":"demo_default"}],"services":[{"name":"web","image":"x","networks":[{"network":"default","ipv4_address":"10.0.0.300"}]}]}`,
		`{"name":"Demo","services":[]}`,
		`{"name":"demo","services":[{"name":"web","image":"x","x-tend":{"liveness":{"http":{"port":-1}}}}]}`,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p spec.Project
		if json.Unmarshal(data, &p) != nil {
			return
		}
		err := spec.Validate(&p)
		if err == nil {
			return
		}
		var e *spec.Error
		if !errors.As(err, &e) {
			t.Fatalf("error of no known kind: %T %v", err, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error on more than one line: %q", err)
		}
	})
}
