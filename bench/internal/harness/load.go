package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// ClientKind is how a load client speaks HTTP to the service.
type ClientKind string

const (
	// KeepAlive clients send HTTP/1.1 requests one after another on one connection,
	// which they reuse (Go's Transport opens a new one when it breaks).
	KeepAlive ClientKind = "keepalive"
	// Fresh clients open a new TCP connection for each request (Connection: close).
	Fresh ClientKind = "fresh"
	// H2C clients speak HTTP/2 with prior knowledge over plain TCP, one connection
	// each, one request at a time.
	H2C ClientKind = "h2c"
)

// ClientKinds are the kinds a Load can run, in the order results are printed.
var ClientKinds = []ClientKind{KeepAlive, Fresh, H2C}

// ParseClientKinds reads a comma-separated list of client kinds ("keepalive,fresh").
func ParseClientKinds(s string) ([]ClientKind, error) {
	var out []ClientKind
	for _, f := range strings.Split(s, ",") {
		k := ClientKind(strings.TrimSpace(f))
		if !slices.Contains(ClientKinds, k) {
			return nil, fmt.Errorf("unknown client kind %q (want %s)", k, joinKinds(ClientKinds))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

func joinKinds(ks []ClientKind) string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return strings.Join(s, ",")
}

// Request is one request a load client sent.
type Request struct {
	Client ClientKind
	ID     int           // the client that sent it, numbered from 0 across kinds
	Post   bool          // a POST (not idempotent); else a GET
	From   time.Duration // when it was sent, since the load's start
	Took   time.Duration // until its answer was read, or it failed
	Fail   string        // "" for a 2xx answer read whole; else the failure's kind (FailureKind)
}

// Span is from its start to its end, as offsets from a run's start.
func (r Request) Span() Span { return Span{r.From, r.From + r.Took} }

// Load is closed-loop HTTP load: Clients clients of each kind, each sending its next
// request as soon as the last one is done, until For has passed. A request still in
// flight then is waited for (at most Timeout) and counted.
type Load struct {
	Kinds   []ClientKind
	Clients int // per kind
	// Base is the URL (scheme and host) a kind's clients send to: a proxy may serve
	// HTTP/2 with prior knowledge on a port of its own.
	Base     func(ClientKind) string
	GetPath  string // what a GET asks for ("/")
	PostPath string // what a POST goes to
	// PostEvery makes every PostEvery-th request of each client a POST (0: none); the
	// first POST is a client's PostEvery-th request.
	PostEvery int
	Timeout   time.Duration // per request
	For       time.Duration
}

// Run sends the load from start on and returns every request, in no particular order.
// Requests cut short by ctx are not counted: they are nobody's failure.
func (l Load) Run(ctx context.Context, start time.Time) []Request {
	var mu sync.Mutex
	var all []Request
	var wg sync.WaitGroup
	for i, k := range l.Kinds {
		for j := range l.Clients {
			id := i*l.Clients + j
			wg.Go(func() {
				rs := l.client(ctx, k, id, start)
				mu.Lock()
				all = append(all, rs...)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	return all
}

// client is one client: its own transport, so that no two clients share a connection.
func (l Load) client(ctx context.Context, k ClientKind, id int, start time.Time) []Request {
	tr := transport(k)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: l.Timeout}
	base := strings.TrimSuffix(l.Base(k), "/")
	var out []Request
	for n := 1; time.Since(start) < l.For && ctx.Err() == nil; n++ {
		post := l.PostEvery > 0 && n%l.PostEvery == 0
		method, path := http.MethodGet, l.GetPath
		if post {
			method, path = http.MethodPost, l.PostPath
		}
		t0 := time.Now()
		err := Send(ctx, hc, method, base+path)
		if ctx.Err() != nil {
			break
		}
		r := Request{Client: k, ID: id, Post: post, From: t0.Sub(start), Took: time.Since(t0)}
		if err != nil {
			r.Fail = FailureKind(err)
		}
		out = append(out, r)
	}
	return out
}

func transport(k ClientKind) *http.Transport {
	switch k {
	case Fresh:
		return &http.Transport{DisableKeepAlives: true, DisableCompression: true}
	case H2C:
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		return &http.Transport{Protocols: &p, DisableCompression: true}
	default:
		return &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	}
}

// StatusError is an answer outside 2xx.
type StatusError int

func (e StatusError) Error() string { return fmt.Sprintf("HTTP %d", int(e)) }

// Send sends a request without a body (a POST with Content-Length: 0) and reads the
// whole answer; anything but a 2xx is a StatusError.
func Send(ctx context.Context, hc *http.Client, method, u string) error {
	var body io.Reader
	if method == http.MethodPost {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return StatusError(resp.StatusCode)
	}
	return err
}

// LoadRun is a load sent while something was done to the replicas.
type LoadRun struct {
	Start    time.Time
	Elapsed  time.Duration // until the last request was done
	Requests []Request
	AllDown  []Span // when no replica's address answered its own health check
}

// RunWhile sends the load from now on while during runs (it is given the start, and the
// load waits for it), and meanwhile watches the replicas' addresses every 20 ms (see
// Watcher), so failures no proxy could have avoided show apart.
func (l Load) RunWhile(ctx context.Context, reps []Replica, during func(start time.Time)) LoadRun {
	start := time.Now()
	var ips []string
	for _, r := range reps {
		ips = append(ips, r.IP)
	}
	wat := NewWatcher(ips, start, 20*time.Millisecond)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching, loading sync.WaitGroup
	watching.Go(func() { wat.Run(watchCtx) })
	var reqs []Request
	loading.Go(func() { reqs = l.Run(ctx, start) })
	during(start)
	loading.Wait()
	elapsed := time.Since(start)
	stopWatch()
	watching.Wait()
	return LoadRun{Start: start, Elapsed: elapsed, Requests: reqs, AllDown: wat.AllDown()}
}
