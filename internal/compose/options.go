package compose

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/tend-sh/tend/internal/spec"
)

// convertOptions maps the container settings of sc (spec.Options): identity,
// privileges, files, limits and logs.
func convertOptions(cp *types.Project, sc types.ServiceConfig) (spec.Options, error) {
	o := spec.Options{
		User:       sc.User,
		WorkingDir: sc.WorkingDir,
		Hostname:   sc.Hostname,
		ReadOnly:   sc.ReadOnly,
		Init:       sc.Init != nil && *sc.Init,
		CapAdd:     nonEmptyList(sc.CapAdd),
		CapDrop:    nonEmptyList(sc.CapDrop),
		ExtraHosts: extraHosts(sc.ExtraHosts),
		DNS:        nonEmptyList(sc.DNS),
		Tmpfs:      tmpfs(sc),
		Ulimits:    ulimits(sc.Ulimits),
		Logging:    logging(sc.Logging),
	}
	var err error
	if o.Limits, err = limits(sc); err != nil {
		return spec.Options{}, err
	}
	if o.Secrets, err = secrets(cp, sc); err != nil {
		return spec.Options{}, err
	}
	if o.Configs, err = configs(cp, sc); err != nil {
		return spec.Options{}, err
	}
	return o, nil
}

func nonEmptyList[S ~[]string](s S) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone([]string(s))
}

// extraHosts sorts compose-go's host -> addresses map by host; a host's addresses
// keep their order, as /etc/hosts lists them.
func extraHosts(in types.HostsList) []spec.ExtraHost {
	var out []spec.ExtraHost
	for _, host := range slices.Sorted(maps.Keys(in)) {
		for _, ip := range in[host] {
			out = append(out, spec.ExtraHost{Host: host, IP: ip})
		}
	}
	return out
}

// tmpfs maps the tmpfs key ("/run" or "/tmp:size=64m,mode=1777") and volumes of
// type tmpfs, whose size and mode become the same mount options.
func tmpfs(sc types.ServiceConfig) []spec.Tmpfs {
	var out []spec.Tmpfs
	for _, entry := range sc.Tmpfs {
		target, options, _ := strings.Cut(entry, ":")
		out = append(out, spec.Tmpfs{Target: target, Options: options})
	}
	for _, v := range sc.Volumes {
		if v.Type != types.VolumeTypeTmpfs {
			continue
		}
		var opts []string
		if v.Tmpfs != nil && v.Tmpfs.Size > 0 {
			opts = append(opts, fmt.Sprintf("size=%d", v.Tmpfs.Size))
		}
		if v.Tmpfs != nil && v.Tmpfs.Mode != 0 {
			opts = append(opts, fmt.Sprintf("mode=%o", v.Tmpfs.Mode))
		}
		if v.ReadOnly {
			opts = append(opts, "ro")
		}
		out = append(out, spec.Tmpfs{Target: v.Target, Options: strings.Join(opts, ",")})
	}
	return out
}

// ulimits sorts the limits by name; a single number is both soft and hard, as in compose.
func ulimits(in map[string]*types.UlimitsConfig) []spec.Ulimit {
	var out []spec.Ulimit
	for _, name := range slices.Sorted(maps.Keys(in)) {
		u := in[name]
		if u == nil {
			continue
		}
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		out = append(out, spec.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	return out
}

func logging(l *types.LoggingConfig) *spec.Logging {
	if l == nil || (l.Driver == "" && len(l.Options) == 0) {
		return nil
	}
	return &spec.Logging{Driver: l.Driver, Options: nonEmpty(l.Options)}
}

// limits reads deploy.resources.limits and the older cpus, mem_limit and pids_limit
// keys. Where both say something, they must agree, as compose requires.
func limits(sc types.ServiceConfig) (spec.Limits, error) {
	out := spec.Limits{CPUs: cpus(sc.CPUS), Memory: spec.Bytes(sc.MemLimit), Pids: sc.PidsLimit}
	if sc.Deploy == nil || sc.Deploy.Resources.Limits == nil {
		return out, nil
	}
	const key = "deploy.resources.limits."
	l := sc.Deploy.Resources.Limits
	deploy := spec.Limits{CPUs: cpus(float32(l.NanoCPUs)), Memory: spec.Bytes(l.MemoryBytes), Pids: l.Pids}
	switch {
	case out.CPUs != 0 && deploy.CPUs != 0 && out.CPUs != deploy.CPUs:
		return spec.Limits{}, errorf(sc.Name, "cpus", "%v conflicts with %scpus %v", out.CPUs, key, deploy.CPUs)
	case out.Memory != 0 && deploy.Memory != 0 && out.Memory != deploy.Memory:
		return spec.Limits{}, errorf(sc.Name, "mem_limit", "%s conflicts with %smemory %s", out.Memory, key, deploy.Memory)
	case out.Pids != 0 && deploy.Pids != 0 && out.Pids != deploy.Pids:
		return spec.Limits{}, errorf(sc.Name, "pids_limit", "%d conflicts with %spids %d", out.Pids, key, deploy.Pids)
	}
	return spec.Limits{
		CPUs:   cmp.Or(deploy.CPUs, out.CPUs),
		Memory: cmp.Or(deploy.Memory, out.Memory),
		Pids:   cmp.Or(deploy.Pids, out.Pids),
	}, nil
}

// cpus widens compose-go's float32 through its shortest decimal form, so that
// 0.1 stays 0.1 instead of becoming 0.10000000149011612.
func cpus(v float32) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
	return f
}
