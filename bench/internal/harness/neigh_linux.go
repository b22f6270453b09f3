//go:build linux

package harness

import (
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"
)

// Neighbours deletes entries from the kernel's neighbour (ARP) cache over rtnetlink,
// which costs microseconds where forking `ip neigh del` costs milliseconds.
//
// Why: while a container is down its address answers no ARP request, and the kernel
// retries resolution only once per retrans_time (1 s). A poller that keeps connecting
// to that address queues behind the pending entry and sees the new process up to a
// second late. Deleting the entry after each failed attempt makes the next attempt
// resolve afresh, so it connects as soon as the new container's interface exists.
type Neighbours struct {
	mu  sync.Mutex
	fd  int
	seq uint32
}

// OpenNeighbours opens the rtnetlink socket. It needs CAP_NET_ADMIN (root).
func OpenNeighbours() (*Neighbours, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("neighbours: open netlink: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("neighbours: bind netlink: %w", err)
	}
	return &Neighbours{fd: fd}, nil
}

// Close releases the socket. A nil Neighbours (the reset is off) has none.
func (n *Neighbours) Close() error {
	if n == nil {
		return nil
	}
	return syscall.Close(n.fd)
}

// Delete removes t's entry from the neighbour cache, like `ip neigh del IP dev IFACE`.
// A missing entry is not an error.
func (n *Neighbours) Delete(t Target) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	const ndmsgLen, attrLen = 12, 8
	b := make([]byte, syscall.NLMSG_HDRLEN+ndmsgLen+attrLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], syscall.RTM_DELNEIGH)
	ne.PutUint16(b[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_ACK)
	ne.PutUint32(b[8:], n.seq)
	m := b[syscall.NLMSG_HDRLEN:]
	m[0] = syscall.AF_INET               // ndm_family
	ne.PutUint32(m[4:], uint32(t.Index)) // ndm_ifindex
	a := m[ndmsgLen:]
	ne.PutUint16(a[0:], attrLen)
	ne.PutUint16(a[2:], 1) // NDA_DST
	copy(a[4:], t.IP.To4())
	if err := syscall.Sendto(n.fd, b, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return fmt.Errorf("neighbours: delete %s: %w", t, err)
	}
	buf := make([]byte, 4096)
	for {
		k, _, err := syscall.Recvfrom(n.fd, buf, 0)
		if err != nil {
			return fmt.Errorf("neighbours: delete %s: read ack: %w", t, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:k])
		if err != nil {
			return fmt.Errorf("neighbours: delete %s: parse ack: %w", t, err)
		}
		for _, msg := range msgs {
			if msg.Header.Seq != n.seq || msg.Header.Type != syscall.NLMSG_ERROR {
				continue
			}
			errno := syscall.Errno(-int32(ne.Uint32(msg.Data[0:4])))
			if errno == 0 || errno == syscall.ENOENT {
				return nil
			}
			return fmt.Errorf("neighbours: delete %s: %w", t, errno)
		}
	}
}
