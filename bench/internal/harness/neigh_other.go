//go:build !linux

package harness

import "errors"

// Neighbours is only implemented on Linux, where the benchmarks run.
type Neighbours struct{}

// OpenNeighbours fails outside Linux.
func OpenNeighbours() (*Neighbours, error) {
	return nil, errors.New("neighbours: only supported on linux")
}

// Close does nothing.
func (n *Neighbours) Close() error { return nil }

// Delete does nothing.
func (n *Neighbours) Delete(Target) error { return nil }
