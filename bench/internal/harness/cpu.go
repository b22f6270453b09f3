package harness

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU accounting, for benchmarks that share a small machine between the load generator,
// the system under test and its peers: each one's CPU time over a run says who had the
// cores. Linux only; elsewhere every reading fails.

// userHZ is the unit of /proc's CPU times (USER_HZ), 100 on every Linux architecture
// the benchmarks run on.
const userHZ = 100

func ticks(s string) (time.Duration, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	return time.Duration(n) * time.Second / userHZ, err
}

// procStat returns a process's /proc/PID/stat fields after the command name, which may
// itself hold spaces and parentheses: field 3 of proc(5) (the state) is index 0.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return strings.Fields(string(b[i+2:])), nil
}

// ProcCPU returns the CPU time (user + system) a running process, all its threads
// included, has used so far.
func ProcCPU(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := ticks(f[11]) // utime, field 14
	s, err2 := ticks(f[12]) // stime, field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times %q %q", pid, f[11], f[12])
	}
	return u + s, nil
}

// ChildPids returns the running processes whose parent is pid (one scan of /proc).
func ChildPids(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	want := strconv.Itoa(pid)
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := procStat(p); err == nil && len(f) > 1 && f[1] == want {
			out = append(out, p)
		}
	}
	return out
}

// ContainerCPU returns the CPU time a container's processes have used since it started,
// from its cgroup (v1 cpuacct, or v2 cpu.stat, with the cgroupfs or systemd driver).
func ContainerCPU(id string) (time.Duration, error) {
	for _, p := range []string{
		"/sys/fs/cgroup/cpuacct/docker/" + id + "/cpuacct.usage",
		"/sys/fs/cgroup/cpu,cpuacct/docker/" + id + "/cpuacct.usage",
		"/sys/fs/cgroup/cpuacct/system.slice/docker-" + id + ".scope/cpuacct.usage",
	} {
		if b, err := os.ReadFile(p); err == nil {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return time.Duration(ns), err
		}
	}
	for _, p := range []string{
		"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/cpu.stat",
		"/sys/fs/cgroup/docker/" + id + "/cpu.stat",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				return time.Duration(us) * time.Microsecond, err
			}
		}
	}
	return 0, fmt.Errorf("cgroup of container %.12s not found", id)
}

// HostCPU returns the CPU time all CPUs of the host have spent busy (anything but idle
// and iowait) since boot, summed over CPUs.
func HostCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy time.Duration
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest times are already counted in user
			break
		}
		d, err := ticks(v)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += d
	}
	return busy, nil
}
