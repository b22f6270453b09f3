package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// converge waits until the stack is what want says, and returns what is
// still wrong when it does not get there within the limit.
func (s *stack) converge(ctx context.Context, want desired) error {
	deadline := time.Now().Add(s.c.converge)
	for {
		wrong, err := s.wrong(ctx, want)
		if err == nil && len(wrong) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return err
			}
			return fmt.Errorf("not converged after %s: %s", s.c.converge, strings.Join(wrong, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wrong lists how the stack differs from want: a slot missing or not
// running, a slot twice (a duplicate), a container no slot of want owns
// (an orphan: another service, a slot past the count, an older generation),
// a network left after a down.
func (s *stack) wrong(ctx context.Context, want desired) ([]string, error) {
	cs, err := s.d.Containers(ctx, true, "io.tend.project="+project)
	if err != nil {
		return nil, err
	}
	count := map[string]int{"web": want.webN, "worker": want.workerN}
	if !want.up {
		count = map[string]int{}
	}
	var out []string
	seen := map[string]int{}
	for _, c := range cs {
		svc, slot := c.Labels["io.tend.service"], c.Labels["io.tend.slot"]
		key := svc + "/" + slot
		seen[key]++
		n, err := strconv.Atoi(slot)
		switch {
		case err != nil || n < 1 || n > count[svc]:
			out = append(out, "orphan "+c.Name())
		case c.Labels["io.tend.bench.gen"] != strconv.Itoa(want.gen):
			out = append(out, fmt.Sprintf("orphan %s (generation %s, want %d)", c.Name(), c.Labels["io.tend.bench.gen"], want.gen))
		case c.State != "running":
			out = append(out, fmt.Sprintf("%s is %s", c.Name(), c.State))
		}
	}
	for key, n := range seen {
		if n > 1 {
			out = append(out, fmt.Sprintf("duplicate: %d containers for %s", n, key))
		}
	}
	for svc, n := range count {
		for slot := 1; slot <= n; slot++ {
			if seen[fmt.Sprintf("%s/%d", svc, slot)] == 0 {
				out = append(out, fmt.Sprintf("missing %s/%d", svc, slot))
			}
		}
	}
	if !want.up {
		ns, err := s.d.Networks(ctx, map[string][]string{"label": {"io.tend.project=" + project}})
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			out = append(out, "network left: "+n.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkJournal reads the whole journal: every line must decode, the numbers
// must run densely (nothing lost, nothing numbered twice) and on from the
// newest one the previous iteration saw.
func (s *stack) checkJournal(ctx context.Context) error {
	out, err := s.t.Run(ctx, "events", "--json", "-n", "0")
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var prev, first uint64
	for i, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		var e struct {
			Seq    uint64 `json:"seq"`
			Action string `json:"action"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return fmt.Errorf("journal line %d does not decode: %v: %q", i+1, err, line)
		}
		if e.Action == "store-recovered" {
			return fmt.Errorf("journal: the store was recovered: %s", line)
		}
		if first == 0 {
			first = e.Seq
		} else if e.Seq != prev+1 {
			return fmt.Errorf("journal: entry %d follows %d", e.Seq, prev)
		}
		prev = e.Seq
	}
	if first != 1 && first != 0 {
		return fmt.Errorf("journal: the oldest entry is %d, not 1", first)
	}
	if prev < s.seq {
		return fmt.Errorf("journal: the newest entry is %d, an earlier read saw %d", prev, s.seq)
	}
	s.seq = prev
	return nil
}
