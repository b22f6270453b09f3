package main

import (
	"fmt"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// cpuSample is the CPU time used so far by the host, the proxy's processes and the
// replicas' containers.
type cpuSample struct {
	host, proxy, replicas time.Duration
	proxyPids             []int
	containers            []string
	ok                    bool
}

func sampleCPU(proxy func() []int, containers func() []string) cpuSample {
	s := cpuSample{ok: true}
	var err error
	if s.host, err = harness.HostCPU(); err != nil {
		s.ok = false
	}
	if proxy != nil {
		s.proxyPids = proxy()
	}
	if containers != nil {
		s.containers = containers()
	}
	s.read(s.proxyPids, s.containers)
	return s
}

// read sums the CPU time of the given processes and containers.
func (s *cpuSample) read(pids []int, ids []string) {
	s.proxy, s.replicas = 0, 0
	for _, p := range pids {
		d, err := harness.ProcCPU(p)
		s.ok = s.ok && err == nil
		s.proxy += d
	}
	for _, id := range ids {
		d, err := harness.ContainerCPU(id)
		s.ok = s.ok && err == nil
		s.replicas += d
	}
}

// until returns the CPU used between s and a later sample over the same processes and
// containers (those seen at the start of the run).
func (s cpuSample) until(later cpuSample, wall time.Duration) cpuSplit {
	later.read(s.proxyPids, s.containers)
	return cpuSplit{
		Wall: wall, OK: s.ok && later.ok,
		Host: later.host - s.host, Proxy: later.proxy - s.proxy, Replicas: later.replicas - s.replicas,
	}
}

// cpuSplit is who used the CPU during one run, in CPU time.
type cpuSplit struct {
	Wall                       time.Duration
	Host, Wrk, Proxy, Replicas time.Duration
	OK                         bool // every reading succeeded
}

// Rest is the host's busy time not used by wrk, the proxy or the replicas: the engine,
// the kernel's network work outside those processes, and other work on the machine.
func (c cpuSplit) Rest() time.Duration { return max(0, c.Host-c.Wrk-c.Proxy-c.Replicas) }

// pct is d as a percentage of one CPU over the run's wall time.
func (c cpuSplit) pct(d time.Duration) float64 {
	if c.Wall <= 0 {
		return 0
	}
	return 100 * d.Seconds() / c.Wall.Seconds()
}

func (c cpuSplit) String() string {
	if !c.OK {
		return "n/a"
	}
	return fmt.Sprintf("wrk %3.0f%% proxy %3.0f%% replicas %3.0f%% rest %3.0f%%",
		c.pct(c.Wrk), c.pct(c.Proxy), c.pct(c.Replicas), c.pct(c.Rest()))
}
