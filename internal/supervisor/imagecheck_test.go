package supervisor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/spec"
)

// service_healthy on a service with no healthcheck in its file: its image's
// HEALTHCHECK counts; an image without one is refused, naming both services; an
// image the engine does not have yet is not judged.
func TestUpChecksImageHealthchecks(t *testing.T) {
	p := func() spec.Project {
		return project(service("api", dependsOn("db", spec.ServiceHealthy)), service("db", func(s *spec.Service) {
			s.Image = "db:1"
			s.Healthcheck = nil
		}))
	}
	h := newHarness(t)
	if _, err := h.sup.Up(context.Background(), p()); err != nil {
		t.Fatalf("image not there yet: %v", err)
	}
	h.rt.AddImage("db:1", "sha256:nocheck")
	_, err := h.sup.Up(context.Background(), p())
	if errs.KindOf(err) != errs.Invalid || !strings.Contains(err.Error(), `service "api": depends_on: condition service_healthy needs a health check on service "db", but neither its compose file nor its image db:1 has one`) {
		t.Fatalf("image without a HEALTHCHECK: %v", err)
	}
	h.rt.AddImageHealthcheck("db:1", "sha256:withcheck")
	if _, err := h.sup.Up(context.Background(), p()); err != nil {
		t.Fatalf("image with a HEALTHCHECK: %v", err)
	}
}
