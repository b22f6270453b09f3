package main

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestLimitQueuesAndDelayDoesNot(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	timed := func(l *loadShape, n int) time.Duration {
		h := l.wrap(ok)
		start := time.Now()
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	if d := timed(&loadShape{limit: 2, work: 50 * time.Millisecond}, 8); d < 200*time.Millisecond {
		t.Errorf("8 requests through 2 places of 50ms took %s, want 200ms or more", d)
	}
	if d := timed(&loadShape{delay: 50 * time.Millisecond}, 8); d > 150*time.Millisecond {
		t.Errorf("8 requests with a fixed 50ms delay took %s, want about 50ms", d)
	}
}
