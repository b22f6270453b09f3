package main

import (
	"net/http"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process has used.
func cpuTime(t *testing.T) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		t.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

func TestBurnAndHeal(t *testing.T) {
	_, _, ts := newTestServer(t)
	for _, bad := range []string{"/burn", "/burn?cores=-1", "/burn?cores=5", "/burn?cores=half"} {
		if code, _ := do(t, ts, http.MethodPost, bad); code != http.StatusBadRequest {
			t.Errorf("POST %s: %d, want 400", bad, code)
		}
	}
	if code, body := do(t, ts, http.MethodPost, "/burn?cores=1"); code != http.StatusOK {
		t.Fatalf("POST /burn?cores=1: %d %s", code, body)
	}
	// On a busy host the spinning goroutine gets what the scheduler gives
	// it: wait for a burn that an idle server never comes near.
	before, start := cpuTime(t), time.Now()
	for cpuTime(t)-before < 200*time.Millisecond {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("burning 1 core used %s of CPU in %s", cpuTime(t)-before, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	do(t, ts, http.MethodPost, "/heal")
	time.Sleep(50 * time.Millisecond)
	before = cpuTime(t)
	time.Sleep(300 * time.Millisecond)
	if used := cpuTime(t) - before; used > 100*time.Millisecond {
		t.Errorf("after /heal the process still used %s of CPU in 300ms", used)
	}
}
