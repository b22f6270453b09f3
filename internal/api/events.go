package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/store"
)

// Limits of the journal's streams: a follower that stops reading is cut off
// after writeTimeout instead of holding a goroutine and a buffer for ever,
// and at most maxFollowers stream at once.
const (
	maxFollowers   = 64
	keepAliveEvery = 15 * time.Second // an SSE comment, so proxies keep an idle stream open
)

var writeTimeout = 30 * time.Second // a var for the test of a quiet stream

// followers bounds the streams served at once, for all servers of the process.
var followers = make(chan struct{}, maxFollowers)

// journalQuery reads the journal's filters from the query string.
func journalQuery(r *http.Request) (store.Query, bool, error) {
	v := r.URL.Query()
	q := store.Query{Project: v.Get("project"), Service: v.Get("service"), Action: v.Get("action")}
	var err error
	if q.After, err = uintParam(r, "after"); err != nil {
		return q, false, err
	}
	limit, err := uintParam(r, "limit")
	if err != nil {
		return q, false, err
	}
	if limit > 100_000 {
		return q, false, errs.E(errs.Invalid, "query parameter limit=%d is more than the journal keeps (100000)", limit)
	}
	q.Limit = int(limit)
	follow, err := boolParam(r, "follow")
	return q, follow, err
}

// events writes the journal: JSON lines, or server-sent events when the
// client accepts text/event-stream (as a browser's EventSource does). With
// follow it keeps the response open and writes new entries as they are
// appended; an SSE client that reconnects with Last-Event-ID resumes after it.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q, follow, err := journalQuery(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if id := r.Header.Get("Last-Event-ID"); sse && id != "" {
		if _, err := fmt.Sscan(id, &q.After); err != nil {
			s.fail(w, errs.E(errs.Invalid, "Last-Event-ID %q is not a journal sequence number", id))
			return
		}
	}
	if follow {
		select {
		case followers <- struct{}{}:
			defer func() { <-followers }()
		default:
			s.fail(w, errs.E(errs.Unavailable, "too many event streams (%d); try again later", maxFollowers))
			return
		}
	}
	write := ndjsonEntry
	w.Header().Set("Content-Type", "application/x-ndjson")
	if sse {
		write = sseEntry
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
	}
	rc := http.NewResponseController(w)
	for {
		changed := s.Store.Appended() // taken before the read, so no entry falls between
		entries, err := s.Store.Journal(q)
		if err != nil {
			s.Log.Error("read journal", "err", err)
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		for _, e := range entries {
			if err := write(w, e); err != nil {
				return // the client went away, or does not read
			}
			q.After = e.Seq
		}
		if !follow {
			return
		}
		q.Limit = 0
		if err := rc.Flush(); err != nil {
			return
		}
		_ = rc.SetWriteDeadline(time.Time{}) // a quiet journal is no slow client
		if !s.waitAppend(w, r, rc, changed, sse) {
			return
		}
	}
}

// waitAppend waits for the journal to change, writing keep-alives to an SSE
// client meanwhile; false when the stream is over.
func (s *Server) waitAppend(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, changed <-chan struct{}, sse bool) bool {
	for {
		tick := time.NewTimer(keepAliveEvery)
		select {
		case <-r.Context().Done():
			tick.Stop()
			return false
		case <-changed:
			tick.Stop()
			return true
		case <-tick.C:
		}
		if !sse {
			continue
		}
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
			return false
		}
		if rc.Flush() != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Time{})
	}
}

func ndjsonEntry(w http.ResponseWriter, e store.Entry) error {
	return json.NewEncoder(w).Encode(e)
}

// sseEntry writes one entry as an event named "entry" whose id is its sequence number.
func sseEntry(w http.ResponseWriter, e store.Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: entry\ndata: %s\n\n", e.Seq, b)
	return err
}
