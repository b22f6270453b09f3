package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// report is the part of `tend chaos --json` the benchmark reads.
type report struct {
	Ended  time.Time `json:"ended"`
	Faults []struct {
		N         int       `json:"n"`
		Kind      string    `json:"kind"`
		Service   string    `json:"service"`
		Slot      int       `json:"slot"`
		At        time.Time `json:"at"`
		Error     string    `json:"error"`
		Down      bool      `json:"down"`
		Recovered time.Time `json:"recovered"`
		Entries   []entry   `json:"entries"`
	} `json:"faults"`
	Kinds []struct {
		Kind         string        `json:"kind"`
		Faults       int           `json:"faults"`
		Failed       int           `json:"failed"`
		Down         int           `json:"down"`
		NotRecovered int           `json:"not_recovered"`
		P50          time.Duration `json:"p50_ns"`
		P99          time.Duration `json:"p99_ns"`
		Max          time.Duration `json:"max_ns"`
	} `json:"kinds"`
	Other []entry `json:"other"`
	After struct {
		Converged  bool     `json:"converged"`
		Duplicates []string `json:"duplicates"`
		Orphans    []string `json:"orphans"`
		NotReady   []string `json:"not_ready"`
	} `json:"after"`
	Settled time.Duration `json:"settled_ns"`
}

type entry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Slot    int       `json:"slot"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
}

// request is one request of the load.
type request struct {
	Service string
	At      time.Time
	Took    time.Duration
	Fail    string // "" when answered 2xx
}

type partResult struct {
	Name     string
	Goal     float64
	Met      bool
	Sent     int
	OK       int
	Failed   map[string]int // by service
	Why      map[string]int // by the latest fault's kind and target, and the failure
	Report   report
	ExitErr  string
	Duration time.Duration
	// Journaled are the daemon's journal entries of the part (from just
	// before the first fault to the end of the load); Unreported, those
	// missing from tend chaos's report.
	Journaled  int
	Unreported []entry
}

// journal reads the project's journal entries after seq.
func journal(ctx context.Context, t *harness.Tend, after uint64) ([]entry, error) {
	out, err := t.Run(ctx, "events", "--json", "-n", "0", "-p", project)
	if err != nil {
		return nil, err
	}
	var es []entry
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("tend events --json: %q: %v", line, err)
		}
		if e.Seq > after {
			es = append(es, e)
		}
	}
	return es, nil
}

// runPart loads the stack and runs `tend chaos` on it until it reports.
func runPart(ctx context.Context, c config, t *harness.Tend, name, action, service string, dur time.Duration, goal float64) (partResult, error) {
	fmt.Printf("\n== %s for %s (tend chaos %s --every %s --for %s)\n", name, dur, action, c.every, dur)
	lctx, stopLoad := context.WithCancel(ctx)
	var mu sync.Mutex
	var reqs []request
	var wg sync.WaitGroup
	for _, p := range published {
		for range c.clients {
			wg.Go(func() {
				rs := paced(lctx, c, fmt.Sprintf("http://127.0.0.1:%d%s", c.basePort+p.port-8080, p.path), p.service)
				mu.Lock()
				reqs = append(reqs, rs...)
				mu.Unlock()
			})
		}
	}
	time.Sleep(time.Second) // the load is steady before the first fault
	before, err := journal(ctx, t, 0)
	if err != nil {
		stopLoad()
		wg.Wait()
		return partResult{}, err
	}
	var last uint64
	for _, e := range before {
		last = max(last, e.Seq)
	}
	start := time.Now()
	args := []string{"chaos", action, "-p", project, "--every", c.every.String(), "--for", dur.String(),
		"--timeout", c.settle.String(), "--json"}
	if service != "" {
		args = append(args, "--service", service)
	}
	cmd := exec.CommandContext(ctx, t.Bin, args...)
	cmd.Env = append(os.Environ(), "TEND_SOCKET="+t.Socket)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	time.Sleep(time.Second)
	stopLoad()
	wg.Wait()
	r := partResult{Name: name, Goal: goal, Failed: map[string]int{}, Why: map[string]int{}, Duration: time.Since(start)}
	if err != nil {
		r.ExitErr = fmt.Sprintf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if jerr := json.Unmarshal(out, &r.Report); jerr != nil {
		return r, fmt.Errorf("tend chaos: %v; %s; output: %s", jerr, r.ExitErr, harness.Tail(string(out), 400))
	}
	for _, q := range reqs {
		r.Sent++
		if q.Fail == "" {
			r.OK++
			continue
		}
		r.Failed[q.Service]++
		r.Why[r.blame(q)]++
	}
	rep := r.Report
	// Every entry the daemon journaled during the part must be in the report.
	during, err := journal(ctx, t, last)
	if err != nil {
		return r, err
	}
	seen := map[uint64]bool{}
	for _, e := range rep.Other {
		seen[e.Seq] = true
	}
	for _, f := range rep.Faults {
		for _, e := range f.Entries {
			seen[e.Seq] = true
		}
	}
	for _, e := range during {
		if e.Time.After(rep.Ended) {
			continue // after tend chaos's last read: not its to report
		}
		r.Journaled++
		if !seen[e.Seq] {
			r.Unreported = append(r.Unreported, e)
		}
	}
	r.Met = len(r.Unreported) == 0 && r.Sent > 0 && float64(r.OK)/float64(r.Sent) >= goal && rep.After.Converged &&
		len(rep.After.Duplicates) == 0 && len(rep.After.Orphans) == 0
	for _, k := range rep.Kinds {
		if k.NotRecovered > 0 {
			r.Met = false
		}
	}
	return r, nil
}

// blame names the latest fault before a failed request: its kind and target.
func (r partResult) blame(q request) string {
	why := "before any fault"
	for _, f := range r.Report.Faults {
		if !f.At.After(q.At) {
			why = fmt.Sprintf("%s %s/%d", f.Kind, f.Service, f.Slot)
		}
	}
	return fmt.Sprintf("%s: %s on %s", why, q.Fail, q.Service)
}

// paced sends GET u every c.pace until ctx ends; every c.freshEvery-th on a new connection.
func paced(ctx context.Context, c config, u, service string) []request {
	keep := &http.Client{Timeout: c.reqTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	fresh := &http.Client{Timeout: c.reqTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	defer keep.CloseIdleConnections()
	tick := time.NewTicker(c.pace)
	defer tick.Stop()
	var out []request
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		hc := keep
		if c.freshEvery > 0 && n%c.freshEvery == 0 {
			hc = fresh
		}
		t0 := time.Now()
		err := harness.Send(ctx, hc, http.MethodGet, u)
		if ctx.Err() != nil {
			return out
		}
		q := request{Service: service, At: t0, Took: time.Since(t0)}
		if err != nil {
			q.Fail = harness.FailureKind(err)
		}
		out = append(out, q)
	}
}

func printPart(r partResult) {
	rep := r.Report
	pct := 0.0
	if r.Sent > 0 {
		pct = 100 * float64(r.OK) / float64(r.Sent)
	}
	verdict := "met"
	if !r.Met {
		verdict = "NOT met"
	}
	fmt.Printf("requests: %d sent, %d answered: %.3f %% (goal %.1f %%: %s)\n", r.Sent, r.OK, pct, 100*r.Goal, verdict)
	if len(r.Failed) > 0 {
		fmt.Printf("failed by service: %s\n", counts(r.Failed))
		fmt.Println("failed requests by the latest fault before them:")
		for _, k := range sortedKeys(r.Why) {
			fmt.Printf("  %4d  %s\n", r.Why[k], k)
		}
	}
	rows := [][]string{{"fault", "count", "took it out", "not ready again", "p50", "p99", "max"}}
	for _, k := range rep.Kinds {
		rows = append(rows, []string{k.Kind, fmt.Sprint(k.Faults), fmt.Sprint(k.Down), fmt.Sprint(k.NotRecovered),
			harness.Secs(k.P50), harness.Secs(k.P99), harness.Secs(k.Max)})
	}
	fmt.Print("recovery (ready again, s):\n" + harness.Table(rows))
	settled := "not converged"
	if rep.Settled >= 0 && rep.After.Converged {
		settled = fmt.Sprintf("converged %.2f s after the last fault", rep.Settled.Seconds())
	}
	fmt.Printf("after: %s; duplicates %d; orphans %d; not ready %v\n", settled, len(rep.After.Duplicates), len(rep.After.Orphans), rep.After.NotReady)
	claimed := 0
	for _, f := range rep.Faults {
		claimed += len(f.Entries)
	}
	fmt.Printf("journal: %d entries written during the part, %d in the report: %d claimed by a fault, %d other",
		r.Journaled, claimed+len(rep.Other), claimed, len(rep.Other))
	other := map[string]int{}
	for _, e := range rep.Other {
		other[fmt.Sprintf("%s/%s %s", e.Service, e.Action, e.Reason)]++
	}
	if len(other) > 0 {
		fmt.Printf(" (%s)", counts(other))
	}
	fmt.Println()
	for _, e := range r.Unreported {
		fmt.Printf("  NOT IN THE REPORT: %d %s %s/%d %s %s: %s\n", e.Seq, e.Time.Format("15:04:05.000"), e.Service, e.Slot, e.Action, e.Reason, e.Message)
	}
	if r.ExitErr != "" {
		fmt.Println("tend chaos:", r.ExitErr)
	}
}

func counts(m map[string]int) string {
	var s []string
	for _, k := range sortedKeys(m) {
		s = append(s, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(s, ", ")
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
