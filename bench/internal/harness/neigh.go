package harness

import (
	"fmt"
	"net"
	"os"
)

// Target is a replica's address as the benchmarks poll it: an IPv4 address on one of
// this host's Docker bridges.
type Target struct {
	Container string // container ID
	IP        net.IP
	Iface     string // the host-side bridge that reaches IP directly
	Index     int    // its interface index, for neighbour-cache resets
}

func (t Target) String() string { return t.IP.String() + "%" + t.Iface }

// LocalTarget checks that ip is reachable directly on a Linux bridge of this host (a
// Docker network's host side) and returns it as a Target. Anything else is refused:
// an overlay address, for instance, is not on any host interface, so the host would send
// it to its default gateway, off this machine.
func LocalTarget(container, ip string) (Target, error) {
	addr := net.ParseIP(ip).To4()
	if addr == nil {
		return Target{}, fmt.Errorf("address %q of %.12s is not IPv4", ip, container)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return Target{}, fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || !n.Contains(addr) || n.IP.Equal(addr) {
				continue
			}
			if _, err := os.Stat("/sys/class/net/" + ifc.Name + "/bridge"); err != nil {
				return Target{}, fmt.Errorf("address %s of %.12s is on %s, which is not a bridge", addr, container, ifc.Name)
			}
			return Target{Container: container, IP: addr, Iface: ifc.Name, Index: ifc.Index}, nil
		}
	}
	return Target{}, fmt.Errorf("address %s of %.12s is on no bridge of this host (overlay?); refusing to send it traffic", addr, container)
}
