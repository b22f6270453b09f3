package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBudgetAllows(t *testing.T) {
	for _, tc := range []struct {
		name              string
		requests, retries uint64
		want              bool
	}{
		{"quiet service: the floor", 0, 29, true},
		{"quiet service: floor spent", 0, 30, false},
		{"busy: 20 % plus the floor", 1000, 229, true},
		{"busy: budget spent", 1000, 230, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := budgetAllows(tc.requests, tc.retries); got != tc.want {
				t.Errorf("budgetAllows(%d, %d) = %v", tc.requests, tc.retries, got)
			}
		})
	}
}

func TestRetryRing(t *testing.T) {
	var r retryRing
	sec := int64(time.Second)
	for i := range 5 {
		r.add(int64(i) * sec)
	}
	if n := r.count(4 * sec); n != 5 {
		t.Fatalf("count = %d", n)
	}
	if n := r.count(12 * sec); n != 2 {
		t.Fatalf("count 8 s later = %d, want the last 2", n)
	}
	r.add(16 * sec) // reuses second 0's slot
	if n := r.count(16 * sec); n != 1 {
		t.Fatalf("count after reuse = %d", n)
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		f          failure
		idempotent bool
		want       bool
	}{
		{failConnect, false, true},
		{failConnect, true, true},
		{502, true, true},
		{502, false, false},
		{503, true, true},
		{failBroken, true, true},
		{failBroken, false, false},
		{500, true, false},
		{504, true, false},
		{failTimeout, true, false},
		{0, true, false},
	} {
		if got := retryable(tc.f, tc.idempotent); got != tc.want {
			t.Errorf("retryable(%d, %v) = %v", tc.f, tc.idempotent, got)
		}
	}
}

func TestIsIdempotent(t *testing.T) {
	for method, want := range map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "PUT": true, "POST": false, "DELETE": false} {
		if got := isIdempotent(method, []string{"PUT"}); got != want {
			t.Errorf("isIdempotent(%s) = %v", method, got)
		}
	}
}

func TestMakeReplayable(t *testing.T) {
	req := func(body string, length int64) *http.Request {
		r, _ := http.NewRequest("POST", "http://x/", strings.NewReader(body))
		r.ContentLength = length
		if body == "" {
			r.Body = nil
		}
		return r
	}
	t.Run("no body", func(t *testing.T) {
		if ok, err := makeReplayable(req("", 0)); !ok || err != nil {
			t.Fatal(ok, err)
		}
	})
	t.Run("small body is kept", func(t *testing.T) {
		r := req("hello", 5)
		if ok, err := makeReplayable(r); !ok || err != nil {
			t.Fatal(ok, err)
		}
		for range 2 {
			r2, err := again(r, "10.0.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(r2.Body); string(b) != "hello" || r2.URL.Host != "10.0.0.1:80" {
				t.Fatalf("replayed body %q to %s", b, r2.URL.Host)
			}
		}
	})
	t.Run("unknown length streams", func(t *testing.T) {
		if ok, _ := makeReplayable(req("hello", -1)); ok {
			t.Fatal("a body of unknown length was made replayable")
		}
	})
	t.Run("large body streams", func(t *testing.T) {
		big := strings.Repeat("x", maxReplayBody+1)
		r := req(big, int64(len(big)))
		if ok, _ := makeReplayable(r); ok {
			t.Fatal("a large body was made replayable")
		}
		if b, _ := io.ReadAll(r.Body); len(b) != len(big) {
			t.Fatalf("the large body was consumed: %d bytes left", len(b))
		}
	})
}

func TestTakeRetrySpendsTheBudget(t *testing.T) {
	p := testPool(t, ejectPolicy{after: 5}, nil)
	svc := p.svc
	now := 100 * int64(time.Second)
	for i := range retryFloor * windowSpan {
		if !svc.takeRetry(now, false) {
			t.Fatalf("retry %d of a quiet service refused", i+1)
		}
	}
	if svc.takeRetry(now, false) {
		t.Fatal("a retry beyond the floor was allowed")
	}
	for range 50 { // 50 requests buy 10 more retries
		svc.win.add(now, 200, time.Millisecond, true)
	}
	for i := range 10 {
		if !svc.takeRetry(now, false) {
			t.Fatalf("retry %d of the 20 %% refused", i+1)
		}
	}
	if svc.takeRetry(now, false) {
		t.Fatal("a retry beyond 20 % was allowed")
	}
	if !svc.takeRetry(now, true) {
		t.Fatal("a retry of a refused connection was refused with the budget spent")
	}
	if svc.takeRetry(now+windowSpan*int64(time.Second), false) != true {
		t.Fatal("the budget did not come back after the window")
	}
}
