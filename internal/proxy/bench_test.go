package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkProxyHTTP compares GETs of a small response straight from
// backends with the same GETs through the proxy, with 32 concurrent
// keep-alive clients (as the wrk comparison with nginx uses). Client,
// proxy and backends share the machine, so the proxy's cost shows as the
// difference. It reports p99 latency next to ns/op.
func BenchmarkProxyHTTP(b *testing.B) {
	body := []byte("hello from the backend\n")
	var backends []Backend
	for i := range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		}))
		b.Cleanup(srv.Close)
		backends = append(backends, Backend{ID: string(rune('a' + i)), Replica: "web/" + string(rune('1'+i)),
			Addr: netip.MustParseAddrPort(srv.Listener.Addr().String()), Ready: true})
	}

	m := NewManager(Config{})
	r := Route{Project: "bench", Service: "web", Listen: freePort(b), Backends: backends}
	if err := m.Sync([]Route{r}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })

	b.Run("direct", func(b *testing.B) { benchGet(b, "http://"+backends[0].Addr.String()+"/") })
	b.Run("proxy-1", func(b *testing.B) {
		one := r
		one.Backends = backends[:1]
		if err := m.Sync([]Route{one}); err != nil {
			b.Fatal(err)
		}
		benchGet(b, "http://"+r.Listen.String()+"/")
	})
	b.Run("proxy-3", func(b *testing.B) {
		if err := m.Sync([]Route{r}); err != nil {
			b.Fatal(err)
		}
		benchGet(b, "http://"+r.Listen.String()+"/")
	})
	// h2c: HTTP/2 with prior knowledge, the clients' streams on shared
	// connections, as bench/soak's h2c clients send them.
	b.Run("proxy-3-h2c", func(b *testing.B) {
		if err := m.Sync([]Route{r}); err != nil {
			b.Fatal(err)
		}
		benchGetWith(b, "http://"+r.Listen.String()+"/", true)
	})
	// fresh: a new connection per request, as bench/soak's fresh clients.
	b.Run("proxy-3-fresh", func(b *testing.B) {
		if err := m.Sync([]Route{r}); err != nil {
			b.Fatal(err)
		}
		benchGetWith(b, "http://"+r.Listen.String()+"/", false, func(tr *http.Transport) { tr.DisableKeepAlives = true })
	})
}

const benchClients = 32

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchGet(b *testing.B, url string) { benchGetWith(b, url, false) }

// benchGetWith is benchGet by HTTP/2 with prior knowledge when h2c, its
// client's transport set up further by opts.
func benchGetWith(b *testing.B, url string, h2c bool, opts ...func(*http.Transport)) {
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients, DisableCompression: true}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	for _, o := range opts {
		o(tr)
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(max(benchClients/max(1, testingProcs()), 1))
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, 1024)
		for pb.Next() {
			start := time.Now()
			res, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	// CPU time per request, of client, proxy and backends together: unlike
	// wall time, it barely moves when other work shares the machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "req/s")
	}
}

// BenchmarkSlowPath compares the two goroutine-side HTTP/1.x stacks on
// what the loops hand over: uploads larger than the loop buffers (1 MiB
// with a length, and chunked), answers the loop streams (1 MiB, a
// control: streamed by stream.go either way) and small GETs on
// connections that uploaded once, 8 keep-alive clients. fasthttp is the
// path in use; std sends the same connections to net/http's server and
// the RoundTripper (slowToStd).
func BenchmarkSlowPath(b *testing.B) {
	big := bytes.Repeat([]byte("x"), 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		fmt.Fprintf(w, "%d\n", n)
	}))
	b.Cleanup(srv.Close)
	backends := []Backend{{ID: "a", Replica: "web/1", Addr: netip.MustParseAddrPort(srv.Listener.Addr().String()), Ready: true}}
	m := NewManager(Config{})
	r := Route{Project: "bench", Service: "web", Listen: freePort(b), Backends: backends, Mode: HTTP}
	if err := m.Sync([]Route{r}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	url := "http://" + r.Listen.String()
	cases := []struct {
		name string
		do   func(c *http.Client) (*http.Response, error)
	}{
		{"upload", func(c *http.Client) (*http.Response, error) {
			return c.Post(url+"/up", "application/octet-stream", bytes.NewReader(big))
		}},
		{"chunked", func(c *http.Client) (*http.Response, error) {
			return c.Post(url+"/up", "application/octet-stream", io.MultiReader(bytes.NewReader(big)))
		}},
		{"download", func(c *http.Client) (*http.Response, error) { return c.Get(url + "/big") }},
		// Small GETs on connections that uploaded once: handed over, they
		// stay with the goroutine stack.
		{"get-after-upload", func(c *http.Client) (*http.Response, error) { return c.Get(url + "/") }},
	}
	for _, tc := range cases {
		for _, std := range []bool{false, true} {
			name := tc.name + "/fasthttp"
			if std {
				name = tc.name + "/std"
			}
			b.Run(name, func(b *testing.B) {
				slowToStd.Store(std)
				defer slowToStd.Store(false)
				tr := &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr}
				if tc.name == "get-after-upload" {
					var wg sync.WaitGroup
					for range 8 {
						wg.Go(func() {
							if res, err := cases[0].do(client); err == nil {
								io.Copy(io.Discard, res.Body)
								res.Body.Close()
							}
						})
					}
					wg.Wait()
				}
				b.SetParallelism(max(8/max(1, testingProcs()), 1))
				cpu0 := cpuTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						res, err := tc.do(client)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode != 200 {
							b.Errorf("status %d", res.StatusCode)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}
