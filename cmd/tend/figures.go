package main

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tend-sh/tend/internal/nodes"
)

// measure reads this host's resources for the cluster's pressure rule: the
// free space of the engine's data root (if tend can see that path), memory
// available and the load average per core. A figure it cannot read is -1.
func measure(rootDir string) nodes.Figures {
	f := nodes.Figures{DiskFree: -1, MemAvailable: -1}
	var st unix.Statfs_t
	if rootDir != "" && unix.Statfs(rootDir, &st) == nil && st.Blocks > 0 {
		f.DiskFree = float64(st.Bavail) / float64(st.Blocks)
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var total, avail float64
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			v, _ := strconv.ParseFloat(fields[1], 64)
			switch fields[0] {
			case "MemTotal:":
				total = v
			case "MemAvailable:":
				avail = v
			}
		}
		if total > 0 {
			f.MemAvailable = avail / total
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if fields := strings.Fields(string(b)); len(fields) > 0 {
			l, _ := strconv.ParseFloat(fields[0], 64)
			f.Load = l / float64(runtime.NumCPU())
		}
	}
	return f
}
