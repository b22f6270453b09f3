package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// callClient is the front's client to its backend: a short timeout, so a
// backend that hangs costs the caller at most that.
var callClient = &http.Client{Timeout: time.Second}

// handleCall is a front service calling its backend (DEMO_BACKEND, e.g.
// http://back:8080/, which tend's proxy serves in-stack) and degrading
// gracefully: when the backend fails, answers an error or tend's fallback
// (its service quarantined or its breaker open), the front still answers
// 200, with what it could do without it.
func (s *server) handleCall(w http.ResponseWriter, r *http.Request) {
	url := os.Getenv("DEMO_BACKEND")
	if url == "" {
		http.Error(w, "demo: DEMO_BACKEND is not set", http.StatusInternalServerError)
		return
	}
	start := time.Now()
	resp, err := callClient.Get(url)
	took := time.Since(start).Round(time.Microsecond)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		fmt.Fprintf(w, "%s: degraded (backend failed after %s: %v)\n", s.name, took, err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	line := strings.TrimSpace(strings.SplitN(string(body), "\n", 2)[0])
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(w, "%s: degraded (backend answered %d in %s: %s)\n", s.name, resp.StatusCode, took, line)
		return
	}
	fmt.Fprintf(w, "%s: ok (backend in %s: %s)\n", s.name, took, line)
}
