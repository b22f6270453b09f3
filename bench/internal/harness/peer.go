package harness

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Peer names one way a benchmark measures: Key on the command line, Name in the output.
type Peer struct{ Key, Name string }

// PickPeers returns the peers of all that the comma-separated keys name, in the order of
// all, or an error for a key that is not one of them.
func PickPeers(all []Peer, keys string) ([]Peer, error) {
	want := strings.Split(keys, ",")
	for _, k := range want {
		if !slices.ContainsFunc(all, func(p Peer) bool { return p.Key == k }) {
			return nil, fmt.Errorf("unknown peer %q", k)
		}
	}
	var out []Peer
	for _, p := range all {
		if slices.Contains(want, p.Key) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Replicas finds a peer's replica containers and reaches them.
type Replicas struct {
	// Labels select the peer's replica containers (all must match): in the event-stream
	// filter during a trial, and in container listings between trials.
	Labels []string
	// Addr looks up a replica container's address, once per start event; "" when the
	// container has none (yet).
	Addr func(ctx context.Context, id string) (string, error)
}

// Target returns the address of container id as a Target to poll; ok is false while it
// has none.
func (r Replicas) Target(ctx context.Context, id string) (t Target, ok bool, err error) {
	ip, err := r.Addr(ctx, id)
	if err != nil || ip == "" {
		return t, false, err
	}
	t, err = LocalTarget(id, ip)
	return t, err == nil, err
}
