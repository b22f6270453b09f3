package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// progress is where each webhook is in the journal, kept in a file so a
// restarted daemon goes on where the last one stopped: the entries of a
// receiver that was down across the restart are still delivered (at least
// once: a group sent after an older one still pending may be sent again).
// Webhooks are keyed by a hash of their URL, which is often a secret.
type progress struct {
	path string
	mu   sync.Mutex
	seqs map[string]uint64
}

func hookKey(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:8])
}

// loadProgress reads the file at path; "" keeps nothing.
func loadProgress(path string) (*progress, error) {
	p := &progress{path: path, seqs: map[string]uint64{}}
	if path == "" {
		return p, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	if err := json.Unmarshal(b, &p.seqs); err != nil {
		return nil, fmt.Errorf("notify: %s: %w", path, err)
	}
	return p, nil
}

// resume is where the webhook goes on from: its kept place, or else end.
// A place past end (a journal recovered shorter) is end.
func (p *progress) resume(url string, end uint64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq, ok := p.seqs[hookKey(url)]; ok && seq <= end {
		return seq
	}
	return end
}

// save records that the webhook has everything up to seq.
func (p *progress) save(url string, seq uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := hookKey(url)
	if p.path == "" || p.seqs[k] == seq {
		return nil
	}
	p.seqs[k] = seq
	b, err := json.Marshal(p.seqs)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.path), ".webhooks-*")
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("notify: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return os.Rename(tmp.Name(), p.path)
}
