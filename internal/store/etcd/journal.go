package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tend-sh/tend/internal/store"
)

// journalPage is how many entries a Journal read takes from etcd at a time.
const journalPage = 500

// rewatchWait is the pause before the journal watch is made again after it
// ended (etcd lost its leader, or is unreachable).
const rewatchWait = time.Second

// Append numbers entries from the cluster-wide counter and writes them with
// it, in one transaction per batch of entries, retried when another host
// took numbers meanwhile; the numbers are dense across the cluster.
func (s *Store) Append(entries ...store.Entry) ([]store.Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	out := slices.Clone(entries)
	for lo := 0; lo < len(out); {
		hi, err := batchEnd(out, lo)
		if err == nil {
			err = s.appendBatch(out[lo:hi])
		}
		if err != nil {
			return nil, fmt.Errorf("store: append journal: %w", err)
		}
		lo = hi
	}
	s.notify(out[len(out)-1].Seq)
	return out, nil
}

// batchEnd is the end of the batch of entries that starts at lo and fits
// one transaction.
func batchEnd(entries []store.Entry, lo int) (int, error) {
	size := 0
	for i := lo; i < len(entries); i++ {
		b, err := json.Marshal(entries[i])
		if err != nil {
			return 0, err
		}
		size += len(b) + 64 // the key, and a number that grows
		// Two operations more: the counter and the trim.
		if i > lo && (i-lo+2 >= maxTxnOps || size > maxTxnBytes) {
			return i, nil
		}
	}
	return len(entries), nil
}

func (s *Store) appendBatch(es []store.Entry) error {
	ctx, cancel := s.ctx()
	defer cancel()
	for {
		last, modRev, _, err := s.lastSeq(ctx)
		if err != nil {
			return err
		}
		top := last + uint64(len(es))
		ops := []clientv3.Op{clientv3.OpPut(s.seqKey(), strconv.FormatUint(top, 10))}
		var cutoff uint64 // entries up to cutoff fall out of retention
		if keep := uint64(s.cfg.MaxEntries); top > keep {
			cutoff = top - keep
		}
		for i := range es {
			es[i].Seq = last + 1 + uint64(i)
			if es[i].Seq <= cutoff {
				continue // written and trimmed at once: not written at all
			}
			b, err := json.Marshal(es[i])
			if err != nil {
				return err
			}
			ops = append(ops, clientv3.OpPut(s.journalKey(es[i].Seq), string(b)))
		}
		if cutoff > 0 {
			// One range up to the older of cutoff and the last old entry: etcd
			// refuses a transaction whose delete covers a key it puts.
			end := s.journalKey(min(cutoff, last) + 1)
			ops = append(ops, clientv3.OpDelete(s.journalPrefix(), clientv3.WithRange(end)))
		}
		ok, err := s.commit(ctx, s.seqKey(), modRev, ops...)
		if err != nil || ok {
			return err
		}
	}
}

// Journal returns the entries q selects, oldest first. It reads back from
// the newest, a page at a time, all pages at the revision of the first.
func (s *Store) Journal(q store.Query) ([]store.Entry, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	for {
		out, err := s.journal(ctx, q)
		if errors.Is(err, rpctypes.ErrCompacted) && ctx.Err() == nil {
			continue // the first page's revision was compacted away: read afresh
		}
		if err != nil {
			return nil, fmt.Errorf("store: read journal: %w", err)
		}
		return out, nil
	}
}

func (s *Store) journal(ctx context.Context, q store.Query) ([]store.Entry, error) {
	if q.After == math.MaxUint64 {
		return nil, nil
	}
	page := int64(journalPage)
	if q.Limit > 0 && q.Limit < journalPage && q.Matches(store.Entry{}) {
		page = int64(q.Limit) // no filter: the newest Limit keys are the answer
	}
	start, end := s.journalKey(q.After+1), clientv3.GetPrefixRangeEnd(s.journalPrefix())
	var out []store.Entry
	var rev int64
	for {
		resp, err := s.cli.Get(ctx, start, clientv3.WithRange(end), clientv3.WithRev(rev),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(page))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil, err
		}
		if err != nil {
			return nil, etcdErr(err)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			var e store.Entry
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				return nil, fmt.Errorf("%s: %w", kv.Key, err)
			}
			if !q.Matches(e) {
				continue
			}
			out = append(out, e)
			if q.Limit > 0 && len(out) == q.Limit {
				slices.Reverse(out)
				return out, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			slices.Reverse(out)
			return out, nil
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key) // the range's end is exclusive
	}
}

// Appended returns a channel closed at the next Append by any host.
func (s *Store) Appended() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appended
}

// notify closes the Appended channel for an Append whose last entry is seq,
// unless a later Append has closed one already: an Append seen both here and
// by the watch closes one channel, not two.
func (s *Store) notify(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.notified {
		s.notified = seq
		close(s.appended)
		s.appended = make(chan struct{})
	}
}

// notifyMissed closes the Appended channel for Appends the watch may have missed.
func (s *Store) notifyMissed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.appended)
	s.appended = make(chan struct{})
}

// watchJournal follows the journal's new entries from revision rev, made
// by any host, until ctx ends; a watch that ends is made again from where
// it stopped.
func (s *Store) watchJournal(ctx context.Context, rev int64) {
	defer close(s.done)
	for {
		rev = s.followJournal(ctx, rev)
		select {
		case <-ctx.Done():
			return
		case <-time.After(rewatchWait):
		}
	}
}

// followJournal watches from rev until the watch ends and returns the
// revision to watch from next.
func (s *Store) followJournal(ctx context.Context, rev int64) int64 {
	// Without a leader the member may be cut off: end the watch and make it again.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	watch := s.cli.Watch(wctx, s.journalPrefix(), clientv3.WithPrefix(), clientv3.WithFilterDelete(), clientv3.WithRev(rev))
	for resp := range watch {
		if resp.CompactRevision > 0 {
			s.notifyMissed()
			return resp.CompactRevision
		}
		if resp.Err() != nil {
			return rev
		}
		var top uint64
		for _, ev := range resp.Events {
			seq, err := strconv.ParseUint(strings.TrimPrefix(string(ev.Kv.Key), s.journalPrefix()), 10, 64)
			if err == nil {
				top = max(top, seq)
			}
			rev = max(rev, ev.Kv.ModRevision+1)
		}
		if top > 0 {
			s.notify(top)
		}
	}
	return rev
}
