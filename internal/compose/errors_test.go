package compose

import (
	"context"
	"errors"
	"github.com/tend-sh/tend/internal/spec"
	"strings"
	"testing"
)

// TestLoadErrors checks each message word for word: they are the user interface.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"bad-yaml", `testdata/invalid/bad-yaml.yaml: invalid YAML: while parsing a block mapping at line 1, column 3: line 3, column 4: did not find expected key`},
		{"unknown-key", `testdata/invalid/unknown-key.yaml: service "web": imagee: unknown key`},
		{"restart-condition", `testdata/invalid/restart-condition.yaml: service "web": deploy.restart_policy.condition: must be one of any, on-failure, none (got "sometimes")`},
		{"restart-key", `testdata/invalid/restart-key.yaml: service "web": restart: must be one of no, always, on-failure[:N], unless-stopped (got "sometimes")`},
		{"port-short", `testdata/invalid/port-short.yaml: service "web": ports: host port 99999 is out of range 1-65535`},
		{"port-long", `testdata/invalid/port-long.yaml: service "web": ports: host port 99999 is out of range 1-65535`},
		{"port-range", `testdata/invalid/port-range.yaml: service "web": ports: "8002-8000:80": invalid hostPort: 8002-8000`},
		{"port-taken", `testdata/invalid/port-taken.yaml: service "web": ports: host port 8080/tcp is already published by service "api"`},
		{"missing-image", `testdata/invalid/missing-image.yaml: service "web": image: required`},
		{"unknown-dependency", `testdata/invalid/unknown-dependency.yaml: service "web": depends_on: unknown service "dbx"`},
		{"cycle", `testdata/invalid/cycle.yaml: service "api": depends_on: dependency cycle: api -> db -> web -> api`},
		{"provider", `testdata/invalid/provider.yaml: service "db": provider: a provider service (type "awesomecloud") is run by a docker compose plugin, not by a container; tend runs containers only: run the provider's resource outside tend and give the services its address`},
		{"image-mount", `testdata/invalid/image-mount.yaml: service "web": volumes: image mount at /srv/assets: tend does not mount an image's files (engines before API 1.48, such as Docker 20.10, cannot); copy the files into a named volume, or build them into this service's image, instead`},
		{"healthy-with-disabled-healthcheck", `testdata/invalid/healthy-with-disabled-healthcheck.yaml: service "web": depends_on: condition service_healthy needs a health check on service "db", whose healthcheck is disabled`},
		{"disabled-dependency", `testdata/invalid/disabled-dependency.yaml: service "web": depends_on: service "debug" is not enabled; activate one of its profiles (debug)`},
		{"xtend-key", `testdata/invalid/xtend-key.yaml: service "web": x-tend.backoff: unknown key "inital" (known: initial, max, reset_after)`},
		{"xtend-top-key", `testdata/invalid/xtend-top-key.yaml: service "web": x-tend: unknown key "retries" (known: backoff, liveness, readiness, logs, idempotent, autoscale, quarantine, fallback, breaker)`},
		{"xtend-method", `testdata/invalid/xtend-method.yaml: service "web": x-tend.idempotent[1]: want an HTTP method in upper case, e.g. PUT (got delete)`},
		{"xtend-duration", `testdata/invalid/xtend-duration.yaml: service "web": x-tend.backoff.max: invalid duration "soon" (want e.g. 500ms or 1m30s)`},
		{"xtend-order", `testdata/invalid/xtend-order.yaml: service "web": x-tend.backoff: initial 2m0s is greater than max 1m0s`},
		{"probe-two-kinds", `testdata/invalid/probe-two-kinds.yaml: service "web": x-tend.liveness: want exactly one of http, tcp and exec (got 2)`},
		{"probe-status", `testdata/invalid/probe-status.yaml: service "web": x-tend.readiness.http.status: want a status code or a range such as 200-399 (got "2xx")`},
		{"probe-port", `testdata/invalid/probe-port.yaml: service "web": x-tend.liveness.tcp.port: want a port number 1-65535 (got 70000)`},
		{"probe-threshold", `testdata/invalid/probe-threshold.yaml: service "web": x-tend.liveness.failure_threshold: must be 1 or more (got 0)`},
		{"log-pattern", "testdata/invalid/log-pattern.yaml: service \"web\": x-tend.logs[0].pattern: invalid regular expression \"FATAL (unclosed\": missing closing ): `FATAL (unclosed`"},
		{"log-action", `testdata/invalid/log-action.yaml: service "web": x-tend.logs[0].action: must be one of replace, restart-dependents, notify (got "reboot")`},
		{"undeclared-volume", `testdata/invalid/undeclared-volume.yaml: service "web": volumes: volume "data" is not declared under top-level volumes`},
		{"undeclared-network", `testdata/invalid/undeclared-network.yaml: service "web": networks: network "front" is not declared under top-level networks`},
		{"scale-conflict", `testdata/invalid/scale-conflict.yaml: service "web": scale: 3 conflicts with deploy.replicas 2`},
		{"healthcheck-test", `testdata/invalid/healthcheck-test.yaml: service "web": healthcheck.test: must start with CMD, CMD-SHELL or NONE (got "curl")`},
		{"mount-type", `testdata/invalid/mount-type.yaml: service "web": volumes: npipe mount at /pipe/docker_engine: named pipes exist on Windows engines only; on Linux bind the unix socket instead (for the engine: /var/run/docker.sock)`},
		{"missing-env-file", `testdata/invalid/missing-env-file.yaml: service "web": env_file: cannot read missing.env: no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, warnings, err := Load(context.Background(), LoadOptions{Files: []string{"testdata/invalid/" + tt.file + ".yaml"}})
			wantError(t, err, tt.want)
			if p != nil || warnings != nil {
				t.Errorf("got a project or warnings with an error")
			}
			var e *spec.Error
			if !errors.As(err, &e) {
				t.Errorf("error is %T, want *spec.Error", err)
			}
		})
	}
}

func TestLoadOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts LoadOptions
		want string
	}{
		{name: "bad project name", opts: LoadOptions{Files: []string{"testdata/full/compose.yaml"}, ProjectName: "Bad!Name"},
			want: `project name: "Bad!Name" must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit`},
		{name: "project name starting with a dash", opts: LoadOptions{Files: []string{"testdata/full/compose.yaml"}, ProjectName: "-shop"},
			want: `project name: "-shop" must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit`},
		{name: "missing file", opts: LoadOptions{Files: []string{"testdata/nope.yaml"}},
			want: `testdata/nope.yaml: cannot read: no such file or directory`},
		{name: "no default file", opts: LoadOptions{WorkingDir: "testdata"},
			want: `no compose file in testdata (looked for compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml)`},
		{name: "second file is bad YAML", opts: LoadOptions{Files: []string{"testdata/profiles/compose.yaml", "testdata/invalid/bad-yaml.yaml"}},
			want: `testdata/invalid/bad-yaml.yaml: invalid YAML: while parsing a block mapping at line 1, column 3: line 3, column 4: did not find expected key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(context.Background(), tt.opts)
			wantError(t, err, tt.want)
		})
	}
}

func TestLoadWarnings(t *testing.T) {
	_, warnings, err := Load(context.Background(), LoadOptions{Files: []string{"testdata/warnings/compose.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, strings.TrimPrefix(w.String(), "testdata/warnings/compose.yaml: "))
	}
	want := []string{
		`networks.front.attachable: not honoured by tend, ignored`,
		`secrets.token.labels: not honoured by tend, ignored`,
		`x-tend: read per service only, ignored here; put x-tend under each service`,
	}
	for _, key := range []string{
		"build.network", "deploy.placement", "deploy.resources.reservations",
		"devices", "healthcheck.start_interval",
		"ipc", "pid", "ports.mode",
		"privileged",
	} {
		want = append(want, `service "web": `+key+`: not honoured by tend, ignored`)
	}
	want = append(want, `service "web": restart: overridden by deploy.restart_policy, ignored`)
	for _, key := range []string{"secrets.mode", "security_opt", "shm_size", "sysctls"} {
		want = append(want, `service "web": `+key+`: not honoured by tend, ignored`)
	}
	want = append(want,
		`service "web": volumes.bind.propagation: not honoured by tend, ignored`,
		`service "web": volumes.volume.nocopy: not honoured by tend, ignored`,
	)
	diff(t, "warnings", got, want)
	if warnings[0].File != "testdata/warnings/compose.yaml" {
		t.Errorf("warning file = %q", warnings[0].File)
	}
}
