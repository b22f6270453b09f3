package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/bench/internal/harness"
)

// counts are what one kind of client (or all, "all") saw in a run or over a part.
type counts struct {
	Client   string        `json:"client"`
	Requests int           `json:"requests"`
	Failed   int           `json:"failed"`
	Failures harness.Tally `json:"failures"` // by kind
	P50      time.Duration `json:"p50_ns"`   // over every request, failed ones included
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	Posts    int           `json:"posts"`
	// PostsFailed counts the failed POSTs; PostsFailedAtKill those of them in flight
	// while a replica was being killed (the only ones a proxy may fail).
	PostsFailed       int `json:"posts_failed"`
	PostsFailedAtKill int `json:"posts_failed_at_kill"`
	// FailedAllDown counts the failed requests that overlapped a time when no replica's
	// address answered its own health check: no proxy could have served those at once.
	FailedAllDown int `json:"failed_while_no_replica_answered"`
	// Failing is the clients' time without service: for each client, from the start of
	// a failed request to the end of its next successful one (or of its last failed one,
	// at the end of the run), summed over the clients. ClientTime is the clients' time
	// in all (clients x the run's length). A closed-loop client whose failures come back
	// at once sends many failed requests in that time, one whose failures are timeouts
	// few: Failing/ClientTime compares peers where the failed counts do not.
	Failing    time.Duration `json:"failing_ns"`
	ClientTime time.Duration `json:"client_time_ns"`

	lat []time.Duration // every request's latency, for pooling
}

// add counts one request.
func (c *counts) add(r harness.Request, kills []killRecord, allDown []harness.Span) {
	c.Requests++
	c.lat = append(c.lat, r.Took)
	if r.Post {
		c.Posts++
	}
	if r.Fail == "" {
		return
	}
	c.Failed++
	c.Failures.Add(r.Fail, 1)
	if r.Post {
		c.PostsFailed++
		if inFlightAtKill(r, kills) {
			c.PostsFailedAtKill++
		}
	}
	if harness.Overlaps(allDown, r.Span()) {
		c.FailedAllDown++
	}
}

// merge adds o's counts and latencies to c.
func (c *counts) merge(o counts) {
	c.Requests += o.Requests
	c.Failed += o.Failed
	for k, v := range o.Failures {
		c.Failures.Add(k, v)
	}
	c.Posts += o.Posts
	c.PostsFailed += o.PostsFailed
	c.PostsFailedAtKill += o.PostsFailedAtKill
	c.FailedAllDown += o.FailedAllDown
	c.Failing += o.Failing
	c.ClientTime += o.ClientTime
	c.lat = append(c.lat, o.lat...)
}

// finish reads the percentiles off the latencies.
func (c *counts) finish() {
	l := harness.LatenciesOf(c.lat)
	c.P50, c.P99, c.Max = l.P50, l.P99, l.Max
}

// failing is one client's time without service (see counts.Failing), from its requests.
func failing(reqs []harness.Request) time.Duration {
	rs := slices.Clone(reqs)
	slices.SortFunc(rs, func(a, b harness.Request) int { return int(a.From - b.From) })
	var sum time.Duration
	var from, to time.Duration
	down := false
	for _, r := range rs {
		end := r.From + r.Took
		switch {
		case r.Fail != "" && !down:
			down, from, to = true, r.From, end
		case r.Fail != "":
			to = max(to, end)
		case down:
			sum += end - from
			down = false
		}
	}
	if down {
		sum += to - from
	}
	return sum
}

// inFlightAtKill: the request was under way while a kill was being carried out.
func inFlightAtKill(r harness.Request, kills []killRecord) bool {
	for _, k := range kills {
		if k.Victim != "" && harness.Overlaps([]harness.Span{k.span()}, r.Span()) {
			return true
		}
	}
	return false
}

func newCounts(client string) counts { return counts{Client: client, Failures: harness.Tally{}} }

// runResult is one run through one peer.
type runResult struct {
	Part     string         `json:"part"`
	Round    int            `json:"round"`
	Peer     string         `json:"peer"`
	Start    time.Time      `json:"start"`
	Elapsed  time.Duration  `json:"elapsed_ns"`
	Kills    []killRecord   `json:"kills"`
	Restarts int            `json:"restarts"` // tend's count for the replicas over the run
	AllDown  []harness.Span `json:"no_replica_answering"`
	Clients  []counts       `json:"clients"` // by kind
	All      counts         `json:"all"`
	Notes    []string       `json:"notes,omitempty"`
	Err      string         `json:"error,omitempty"` // the run did not happen
}

// tally counts the run's requests by client kind and in all; each of clients clients
// of a kind ran for the run's length.
func (rr *runResult) tally(kinds []harness.ClientKind, clients int, reqs []harness.Request) {
	rr.Clients = nil
	for _, k := range kinds {
		c := newCounts(string(k))
		c.ClientTime = time.Duration(clients) * rr.Elapsed
		rr.Clients = append(rr.Clients, c)
	}
	rr.All = newCounts("all")
	rr.All.ClientTime = time.Duration(clients*len(kinds)) * rr.Elapsed
	byClient := map[int][]harness.Request{}
	for _, q := range reqs {
		i := slices.Index(kinds, q.Client)
		rr.Clients[i].add(q, rr.Kills, rr.AllDown)
		rr.All.add(q, rr.Kills, rr.AllDown)
		byClient[q.ID] = append(byClient[q.ID], q)
	}
	for _, rs := range byClient {
		d := failing(rs)
		rr.Clients[slices.Index(kinds, rs[0].Client)].Failing += d
		rr.All.Failing += d
	}
	for i := range rr.Clients {
		rr.Clients[i].finish()
	}
	rr.All.finish()
}

// total is a part's runs through one peer, pooled.
type total struct {
	Part    string   `json:"part"`
	Peer    string   `json:"peer"`
	Runs    int      `json:"runs"`
	Failing int      `json:"runs_with_a_failure"`
	Kills   int      `json:"kills"`
	Clients []counts `json:"clients"`
	All     counts   `json:"all"`
}

// results are every run and, once finished, the totals.
type results struct {
	Config map[string]any `json:"config"`
	Runs   []runResult    `json:"runs"`
	Totals []*total       `json:"totals"`
}

// add records a run and pools it into its part's total for its peer.
func (res *results) add(rr runResult) {
	res.Runs = append(res.Runs, rr)
	if rr.Err != "" {
		return
	}
	var t *total
	for _, x := range res.Totals {
		if x.Part == rr.Part && x.Peer == rr.Peer {
			t = x
		}
	}
	if t == nil {
		t = &total{Part: rr.Part, Peer: rr.Peer, All: newCounts("all")}
		res.Totals = append(res.Totals, t)
	}
	t.Runs++
	if rr.All.Failed > 0 {
		t.Failing++
	}
	for _, k := range rr.Kills {
		if k.Victim != "" && k.Err == "" {
			t.Kills++
		}
	}
	for _, c := range rr.Clients {
		i := slices.IndexFunc(t.Clients, func(x counts) bool { return x.Client == c.Client })
		if i < 0 {
			t.Clients = append(t.Clients, newCounts(c.Client))
			i = len(t.Clients) - 1
		}
		t.Clients[i].merge(c)
	}
	t.All.merge(rr.All)
}

// finish computes the totals' percentiles.
func (res *results) finish() {
	for _, t := range res.Totals {
		for i := range t.Clients {
			t.Clients[i].finish()
		}
		t.All.finish()
	}
}

func (res *results) write(path string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// summary is the configuration as the JSON file records it.
func (c config) summary() map[string]any {
	return map[string]any{
		"rounds": c.rounds, "kill_every": c.killEvery.String(), "fast_rounds": c.fastRounds, "fast_kill_every": c.fastEvery.String(),
		"duration": c.duration.String(), "gap": c.gap.String(), "settle": c.settle.String(), "fast_settle": c.fastSettle.String(), "clients_per_kind": c.clients,
		"kinds": c.kinds, "post_every": c.postEvery, "request_timeout": c.reqTimeout.String(), "seed": c.seed,
		"replicas": c.replicas, "tend_addr": c.tendAddr, "tend": c.build(), "image": c.image,
		"host": harness.Host(), "started": time.Now().Format(time.RFC3339),
	}
}

// rows are counts as table rows, after the leading cells.
func rows(lead []string, cs ...counts) [][]string {
	var out [][]string
	for _, c := range cs {
		out = append(out, append(slices.Clone(lead), c.Client, fmt.Sprint(c.Requests), fmt.Sprint(c.Failed), share(c.Failed, c.Requests),
			share64(c.Failing, c.ClientTime), harness.Millis(c.P50), harness.Millis(c.P99), harness.Millis(c.Max), postLine(c), fmt.Sprint(c.FailedAllDown), c.Failures.Line()))
	}
	return out
}

var countsHeader = []string{"client", "requests", "failed", "failed %", "time failing %", "p50 ms", "p99 ms", "max ms", "POSTs failed/sent (at a kill)", "while none answered", "failures by kind"}

func share(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", 100*float64(n)/float64(of))
}

func share64(d, of time.Duration) string {
	if of <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", 100*d.Seconds()/of.Seconds())
}

func postLine(c counts) string {
	if c.Posts == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d (%d)", c.PostsFailed, c.Posts, c.PostsFailedAtKill)
}

func printRound(pt part, round int, runs []runResult) {
	fmt.Printf("\nround %d/%d, %s:\n", round, pt.rounds, pt.name)
	table := [][]string{append([]string{"peer"}, countsHeader...)}
	for _, rr := range runs {
		if rr.Err != "" {
			fmt.Printf("  %-5s  FAILED: %s\n", rr.Peer, rr.Err)
			continue
		}
		down := "no time"
		if len(rr.AllDown) > 0 {
			down = fmt.Sprintf("%s ms in %d spans", harness.Millis(harness.Total(rr.AllDown)), len(rr.AllDown))
		}
		fmt.Printf("  %-5s  %s; kills %s; tend restarts %d; no replica answering: %s\n",
			rr.Peer, rr.Start.Format("15:04:05"), killsLine(rr.Kills), rr.Restarts, down)
		table = append(table, rows([]string{rr.Peer}, append(slices.Clone(rr.Clients), rr.All)...)...)
	}
	if len(table) > 1 {
		fmt.Print(indent(harness.Table(table)))
	}
	for _, rr := range runs {
		for _, n := range rr.Notes {
			fmt.Printf("  %-5s  %s\n", rr.Peer, n)
		}
	}
}

func printTotals(res *results) {
	for _, part := range partsOf(res) {
		fmt.Printf("\n== totals, %s:\n", part)
		table := [][]string{append([]string{"peer", "runs", "with a failure", "kills"}, countsHeader...)}
		for _, t := range res.Totals {
			if t.Part != part {
				continue
			}
			lead := []string{t.Peer, fmt.Sprint(t.Runs), fmt.Sprint(t.Failing), fmt.Sprint(t.Kills)}
			table = append(table, rows(lead, append(slices.Clone(t.Clients), t.All)...)...)
		}
		fmt.Print(indent(harness.Table(table)))
		for _, t := range res.Totals {
			if t.Part == part {
				fmt.Printf("  %s: %d of %d requests failed (%s %%; clients without service %s %% of the time), %d of %d POSTs (%d in flight at a kill); p99 %s ms, max %s ms\n",
					t.Peer, t.All.Failed, t.All.Requests, share(t.All.Failed, t.All.Requests), share64(t.All.Failing, t.All.ClientTime),
					t.All.PostsFailed, t.All.Posts, t.All.PostsFailedAtKill, harness.Millis(t.All.P99), harness.Millis(t.All.Max))
			}
		}
	}
}

func partsOf(res *results) []string {
	var out []string
	for _, t := range res.Totals {
		if !slices.Contains(out, t.Part) {
			out = append(out, t.Part)
		}
	}
	return out
}

func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return b.String()
}
