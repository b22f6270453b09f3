package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// entry is the part of a `tend events --json` line the benchmark reads.
type entry struct {
	Time      time.Time `json:"time"`
	Container string    `json:"container"` // short ID
	Action    string    `json:"action"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
}

// journalMilestones maps tend's journal actions about the sick container to milestones.
var journalMilestones = map[string]string{
	"unready":  msUnready,
	"replace":  msReplace,
	"takeover": msTakeover,
}

// readJournal adds the milestones tend journaled about the sick container to tr, read
// after the trial (`tend events --json`), so reading it costs the trial nothing. tend
// journals the takeover once the sick container is stopped and removed, which can be
// after the trial ended: when the trial was done, it reads again for up to 3 s until the
// takeover is there.
func (e *env) readJournal(ctx context.Context, p *peer, sick string, tr *trial) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		out, err := e.tend.Run(ctx, "events", "--json", "-p", p.project, "-n", "50")
		if err != nil {
			tr.Err = fmt.Errorf("read the journal: %w", err)
			return
		}
		found := journalMilestonesOf(parseJournal(out), sick, tr.Sent)
		if _, ok := found[msTakeover]; ok || !tr.Done || time.Now().After(deadline) || ctx.Err() != nil {
			for key, at := range found {
				tr.mark(key, at)
			}
			for _, en := range parseJournal(out) {
				if en.Error != "" && !en.Time.Before(tr.Sent) {
					tr.Notes = append(tr.Notes, fmt.Sprintf("tend %s failed: %s", en.Action, en.Error))
				}
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// journalMilestonesOf picks the first unready, replace and takeover entries about the
// sick container (its full ID; the journal has a short one) from t0 on.
func journalMilestonesOf(es []entry, sick string, t0 time.Time) map[string]time.Duration {
	found := map[string]time.Duration{}
	for _, en := range es {
		key, ok := journalMilestones[en.Action]
		if !ok || en.Time.Before(t0) || en.Container == "" || !strings.HasPrefix(sick, en.Container) {
			continue
		}
		if _, seen := found[key]; !seen {
			found[key] = en.Time.Sub(t0)
		}
	}
	return found
}

// parseJournal decodes `tend events --json` output, skipping lines it cannot read.
func parseJournal(out string) []entry {
	var es []entry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var en entry
		if json.Unmarshal(sc.Bytes(), &en) == nil && !en.Time.IsZero() {
			es = append(es, en)
		}
	}
	return es
}
