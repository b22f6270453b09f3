package compose

import (
	"cmp"
	"fmt"
	"github.com/tend-sh/tend/internal/spec"
	"reflect"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// keyRules say which compose keys tend honours. Keys are dotted yaml names from the
// top of a service (or project), without map keys or list indices. The walk over
// compose-go's structs reports every key that is set and not honoured, so a key that
// compose-go learns later is reported until tend deliberately maps it: the check
// fails closed.
type keyRules struct {
	honoured map[string]bool // mapped onto the spec.Project; nothing inside is reported
	partial  map[string]bool // honoured in part: the walk reports the keys inside that are not
	defaults map[string]any  // values compose-go fills in, which mean "not set"
}

var serviceRules = keyRules{
	honoured: set("name", "profiles", "image", "command", "entrypoint",
		"build.context", "build.dockerfile", "build.dockerfile_inline", "build.args", "build.target", "build.labels", // build.go
		"environment", "env_file", "labels", "label_file", // compose-go merges the files in
		"extends", // compose-go resolves it
		"expose",  // documentation only: on tend's networks every port is reachable anyway
		"container_name", "network_mode", "stop_grace_period", "stop_signal", "restart", "scale", "depends_on",
		"healthcheck.test", "healthcheck.interval", "healthcheck.timeout",
		"healthcheck.start_period", "healthcheck.retries", "healthcheck.disable",
		"ports.target", "ports.published", "ports.host_ip", "ports.protocol", "ports.app_protocol",
		"volumes.type", "volumes.source", "volumes.target", "volumes.read_only", "volumes.bind.selinux",
		"volumes.tmpfs", "volumes.image", // tmpfs mounts are mapped by convertOptions, image mounts rejected by convertMounts
		"networks.aliases", "networks.ipv4_address", "networks.ipv6_address",
		"deploy.replicas", "deploy.restart_policy", "deploy.update_config", "deploy.rollback_config", // rollout.go
		// options.go and secrets.go
		"user", "working_dir", "hostname", "read_only", "init", "cap_add", "cap_drop", "extra_hosts", "dns",
		"tmpfs", "ulimits", "logging", "cpus", "mem_limit", "pids_limit",
		"deploy.resources.limits.cpus", "deploy.resources.limits.memory", "deploy.resources.limits.pids",
		"secrets.source", "secrets.target", "configs.source", "configs.target"),
	partial: set("build", "healthcheck", "ports", "volumes", "volumes.bind", "volumes.volume", "networks", "deploy",
		"deploy.resources", "deploy.resources.limits", "secrets", "configs"),
	defaults: map[string]any{
		"ports.mode":                    "ingress", // tend's proxy always owns published ports
		"volumes.bind.create_host_path": types.OptOut(true),
		"deploy.mode":                   "replicated",
	},
}

var projectRules = keyRules{
	honoured: set("name", "services",
		"networks.name", "networks.driver", "networks.driver_opts", "networks.external",
		"networks.internal", "networks.labels", "networks.enable_ipv6", "networks.ipam.driver", "networks.ipam.config.subnet", "networks.ipam.config.gateway", "networks.ipam.config.ip_range",
		"volumes.name", "volumes.driver", "volumes.driver_opts", "volumes.external", "volumes.labels",
		// where a service's secret or config comes from; secrets.go refuses all but file
		"secrets.name", "secrets.file", "secrets.environment", "secrets.content", "secrets.external",
		"configs.name", "configs.file", "configs.environment", "configs.content", "configs.external"),
	partial: set("networks", "networks.ipam", "networks.ipam.config", "volumes", "secrets", "configs"),
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// serviceWarnings reports the keys of sc that tend does not honour.
func serviceWarnings(sc types.ServiceConfig) []spec.Warning {
	var out []spec.Warning
	serviceRules.walk(reflect.ValueOf(sc), "", "", func(key string) {
		out = append(out, notHonoured(sc.Name, key))
	})
	if sc.Restart != "" && sc.Deploy != nil && sc.Deploy.RestartPolicy != nil {
		out = append(out, spec.Warning{Service: sc.Name, Key: "restart",
			Message: "overridden by deploy.restart_policy, ignored"})
	}
	return out
}

// projectWarnings reports top-level keys tend does not honour (secrets, configs, ...).
func projectWarnings(cp *types.Project) []spec.Warning {
	var out []spec.Warning
	projectRules.walk(reflect.ValueOf(*cp), "", "", func(key string) {
		out = append(out, notHonoured("", key))
	})
	if _, ok := cp.Extensions[spec.ExtensionKey]; ok {
		out = append(out, spec.Warning{Key: spec.ExtensionKey,
			Message: fmt.Sprintf("read per service only, ignored here; put %s under each service", spec.ExtensionKey)})
	}
	return out
}

// walk reports the set keys under v (at rule path rule, shown as display) that
// neither r.honoured nor r.defaults account for.
func (r keyRules) walk(v reflect.Value, rule, display string, report func(key string)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			r.walk(v.Elem(), rule, display, report)
		}
	case reflect.Struct:
		r.walkFields(v, rule, display, report)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			r.walk(v.Index(i), rule, display, report)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
		for _, k := range keys {
			r.walk(v.MapIndex(k), rule, join(display, k.String()), report)
		}
	}
}

func (r keyRules) walkFields(v reflect.Value, rule, display string, report func(key string)) {
	t := v.Type()
	for i := range t.NumField() {
		name, inline := yamlKey(t.Field(i))
		f := v.Field(i)
		switch {
		case inline:
			r.walkFields(f, rule, display, report)
		case name == "":
		case r.unset(f, join(rule, name)) || r.honoured[join(rule, name)]:
		case r.partial[join(rule, name)]:
			r.walk(f, join(rule, name), join(display, name), report)
		default:
			report(join(display, name))
		}
	}
}

// yamlKey is the compose key of a struct field: "" for fields that are no key
// (unexported, `yaml:"-"`, the x- extensions), inline for embedded specs.
func yamlKey(f reflect.StructField) (name string, inline bool) {
	if !f.IsExported() {
		return "", false
	}
	name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || strings.HasPrefix(name, "#") {
		return "", false
	}
	if name == "" {
		return "", slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct
	}
	return name, false
}

// unset says whether f holds nothing a user wrote: a zero value, an empty list or
// map, or a default compose-go filled in.
func (r keyRules) unset(f reflect.Value, rule string) bool {
	switch f.Kind() {
	case reflect.Map, reflect.Slice:
		if f.Len() == 0 {
			return true
		}
	}
	if f.IsZero() {
		return true
	}
	def, ok := r.defaults[rule]
	return ok && f.CanInterface() && f.Interface() == def
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// sortWarnings orders warnings top-level first, then by service and key, and drops
// repeats (two volumes with the same unhonoured option say it once).
func sortWarnings(ws []spec.Warning) []spec.Warning {
	slices.SortStableFunc(ws, func(a, b spec.Warning) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Key, b.Key))
	})
	return slices.Compact(ws)
}
