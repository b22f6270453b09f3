// Package testwait holds the waits the packages' tests share: polling for a
// condition with a deadline, and checking that goroutines wound down.
// Only tests import it.
package testwait

import (
	goruntime "runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// For bounds every wait; the conditions usually hold within milliseconds.
const For = 3 * time.Second

// Eventually polls cond until it holds, failing the test after For.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(For)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", For, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Goroutines waits for the number of goroutines to settle back to before,
// and dumps them if it does not.
func Goroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(For)
	for goruntime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines left, %d before:\n%s", goruntime.NumGoroutine(), before, b.String())
		}
		time.Sleep(time.Millisecond)
	}
}
