package proxy

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

const (
	// retryRatio is how much retries may add to a service's requests over
	// the window: a failing replica costs at most 20 % more load, so
	// retries never turn a brown-out into an overload.
	retryRatio = 0.2
	// retryFloor is the retries per second always allowed, so a quiet
	// service can retry too.
	retryFloor = 3
	// maxReplayBody is the largest request body kept in memory so the
	// request can be sent again.
	maxReplayBody = 64 << 10
)

// budgetAllows reports whether one more retry fits a window that saw
// requests requests and retries retries.
func budgetAllows(requests, retries uint64) bool {
	return float64(retries) < retryRatio*float64(requests)+retryFloor*windowSpan
}

// retryRing counts a service's retries per second.
type retryRing struct {
	slots [ringSize]struct {
		sec atomic.Int64
		n   atomic.Uint64
	}
}

func (r *retryRing) add(now int64) {
	sec := now / int64(time.Second)
	s := &r.slots[sec&(ringSize-1)]
	if old := s.sec.Load(); old != sec {
		if old < sec && s.sec.CompareAndSwap(old, sec) {
			s.n.Store(0)
		}
	}
	s.n.Add(1)
}

func (r *retryRing) count(now int64) uint64 {
	cur := now / int64(time.Second)
	var n uint64
	for k := int64(0); k < windowSpan; k++ {
		s := &r.slots[(cur-k)&(ringSize-1)]
		if s.sec.Load() == cur-k {
			n += s.n.Load()
		}
	}
	return n
}

// takeRetry spends one retry from the service's budget, if it has one. A
// retry of a request that never reached a replica (free) is always allowed:
// it adds no load to the replicas, and it is what keeps a killed replica
// from failing requests; it is counted all the same.
func (s *service) takeRetry(now int64, free bool) bool {
	if !free && !budgetAllows(s.win.count(now), s.retries.count(now)) {
		return false
	}
	s.retries.add(now)
	s.retried.Inc()
	return true
}

// isIdempotent reports whether a request with method may be sent twice:
// GET, HEAD, OPTIONS and the route's extra methods.
func isIdempotent(method string, extra []string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	for _, m := range extra {
		if m == method {
			return true
		}
	}
	return false
}

// mayRetry reports whether a request whose tries-th attempt failed with f
// may be sent again (see maxAttempts): once after any failure that allows
// it, and once more only after a connection that failed, which cost the
// replica nothing.
func mayRetry(f failure, idempotent bool, tries int) bool {
	return f != 0 && tries < maxAttempts && retryable(f, idempotent) && (tries == 1 || f == failConnect)
}

// retryable reports whether an attempt that failed with f may be made
// again elsewhere. A failed connection never reached the backend, so any
// method may retry; a 502, 503 or broken connection may have, so only
// idempotent ones do. A timeout never retries: the backend may still be
// working on it, and the client has waited long enough.
func retryable(f failure, idempotent bool) bool {
	switch f {
	case failConnect:
		return true
	case http.StatusBadGateway, http.StatusServiceUnavailable, failBroken, failHung:
		return idempotent
	}
	return false
}

// makeReplayable reads a small request body into memory so the request can
// be sent twice, and reports whether it can. A body of unknown length or
// over maxReplayBody streams through and is never retried.
func makeReplayable(req *http.Request) (bool, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return true, nil
	}
	if req.ContentLength <= 0 || req.ContentLength > maxReplayBody {
		return false, nil
	}
	buf := make([]byte, req.ContentLength)
	if _, err := io.ReadFull(req.Body, buf); err != nil {
		return false, err
	}
	req.Body = io.NopCloser(bytes.NewReader(buf))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return true, nil
}

// again is req for another attempt on host: a shallow copy, since the
// transport may still hold the first, with the body rewound.
func again(req *http.Request, host string) (*http.Request, error) {
	r := new(http.Request)
	*r = *req
	u := *req.URL
	u.Host = host
	r.URL = &u
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	return r, nil
}
