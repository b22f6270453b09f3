package main

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// tally is what a load's requests came to.
type tally struct {
	wait     chan struct{} // closed once every client is done
	mu       sync.Mutex
	ok       int
	failures map[string]int
}

func (t *tally) add(fail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fail == "" {
		t.ok++
		return
	}
	if t.failures == nil {
		t.failures = map[string]int{}
	}
	t.failures[fail]++
}

// runLoad is closed-loop keep-alive GET load until ctx ends: each client
// sends its next request as soon as the last is answered, to the address
// pick gives it then. Requests cut short by ctx count for nobody.
func runLoad(ctx context.Context, clients int, pick func() string) *tally {
	t := &tally{}
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				base := pick()
				if base == "" {
					time.Sleep(10 * time.Millisecond) // no replica known yet
					continue
				}
				err := harness.Send(ctx, hc, http.MethodGet, base+"/")
				if ctx.Err() != nil {
					return
				}
				fail := ""
				if err != nil {
					fail = harness.FailureKind(err)
				}
				t.add(fail)
			}
		})
	}
	wgDone := make(chan struct{})
	go func() { wg.Wait(); close(wgDone) }()
	t.wait = wgDone
	return t
}

// roundRobin hands out the addresses it holds in turn.
type roundRobin struct {
	mu    sync.Mutex
	addrs []string
	n     atomic.Uint64
}

func (r *roundRobin) set(addrs []string) {
	r.mu.Lock()
	r.addrs = addrs
	r.mu.Unlock()
}

func (r *roundRobin) pick() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.addrs) == 0 {
		return ""
	}
	return r.addrs[r.n.Add(1)%uint64(len(r.addrs))]
}
