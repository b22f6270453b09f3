package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/spec"
	"gopkg.in/yaml.v3"
)

func sampleProject() *spec.Project {
	return &spec.Project{
		Name: "shop",
		Services: []spec.Service{{
			Name: "web", Image: "web:1",
			Command:     []string{"/app", "-listen", ":8080"},
			Environment: map[string]string{"B": "2", "A": "yes"},
			Networks:    []spec.NetworkAttach{{Network: "default"}},
			Healthcheck: &spec.Healthcheck{Test: []string{"CMD", "/app", "-probe"}, Interval: 1500 * time.Millisecond},
			Options: spec.Options{
				User:    "1000",
				Secrets: []spec.FileMount{{Name: "token", Source: "/srv/token", Target: "/run/secrets/token"}},
				Ulimits: []spec.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
				Limits:  spec.Limits{CPUs: 0.5, Memory: 256 << 20},
			},
			Replicas: 2,
			Restart:  spec.RestartPolicy{Condition: spec.RestartAny, Window: 2 * time.Minute},
			Tend:     spec.Extension{Backoff: spec.Backoff{Initial: 500 * time.Millisecond, Max: time.Hour, ResetAfter: 90 * time.Second}},
		}},
		Networks: []spec.Network{{Key: "default", Name: "shop_default"}},
	}
}

// TestRenderYAML checks the document word for word: it is what people read.
func TestRenderYAML(t *testing.T) {
	got, err := renderYAML(sampleProject())
	if err != nil {
		t.Fatal(err)
	}
	want := `name: shop
services:
  - name: web
    image: web:1
    command: [/app, -listen, ':8080']
    environment:
      A: "yes"
      B: "2"
    networks:
      - network: default
    healthcheck:
      test: [CMD, /app, -probe]
      interval: 1.5s
    user: "1000"
    secrets:
      - name: token
        source: /srv/token
        target: /run/secrets/token
    ulimits:
      - name: nofile
        soft: 1024
        hard: 2048
    limits:
      cpus: 0.5
      memory: 256MiB
    replicas: 2
    restart:
      condition: any
      window: 2m
    x-tend:
      backoff:
        initial: 500ms
        max: 1h
        reset_after: 1m30s
networks:
  - key: default
    name: shop_default
volumes: []
`
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderJSON(t *testing.T) {
	got, err := renderJSON(sampleProject())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services []struct {
			User     string         `json:"user"`
			Limits   map[string]any `json:"limits"`
			Replicas int            `json:"replicas"`
			Tend     struct {
				Backoff map[string]string `json:"backoff"`
			} `json:"x-tend"`
		} `json:"services"`
	}
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	s := doc.Services[0]
	if s.User != "1000" || s.Replicas != 2 || s.Limits["memory"] != "256MiB" || s.Tend.Backoff["max"] != "1h" {
		t.Errorf("document: %s", got)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 500 * time.Millisecond: "500ms", time.Minute: "1m", 90 * time.Second: "1m30s",
		time.Hour: "1h", 90 * time.Minute: "1h30m", time.Hour + time.Second: "1h0m1s", 10 * time.Minute: "10m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%d) = %s, want %s", d, got, want)
		}
	}
}

// Multi-line strings read back as written, the leading newline included.
func TestRenderYAMLKeepsMultiLineStrings(t *testing.T) {
	p := sampleProject()
	values := []string{"\nafter a newline\nsecond\n", "two\nlines\n", "no newline at the end\nx", "\n"}
	p.Services[0].Environment = map[string]string{}
	for i, v := range values {
		p.Services[0].Environment[string(rune('A'+i))] = v
	}
	p.Services[0].Command = []string{"/app", "\nx"}
	out, err := renderYAML(p)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Services []struct {
			Environment map[string]string `yaml:"environment"`
			Command     []string          `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for i, v := range values {
		if got := back.Services[0].Environment[string(rune('A'+i))]; got != v {
			t.Errorf("environment %c: read back %q, wrote %q\n%s", 'A'+i, got, v, out)
		}
	}
	if got := back.Services[0].Command; len(got) != 2 || got[1] != "\nx" {
		t.Errorf("command read back %q\n%s", got, out)
	}
}
