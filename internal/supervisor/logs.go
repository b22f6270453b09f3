package supervisor

import (
	"bufio"
	"cmp"
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/runtime"
)

// Logs writes the output of a service's replicas to w, each line after its
// container's name, as `docker compose logs` does: target is a service
// ("web") or one replica ("web/2"). Without o.Follow each replica's output
// is written whole, one replica after the other; following, the replicas
// are read at once, and a replica that starts meanwhile (a replacement, a
// scale-out) or starts again (a restart through the engine) is taken up
// within a second, until ctx ends.
func (s *Supervisor) Logs(ctx context.Context, project, target string, o runtime.LogOptions, w io.Writer) error {
	service, slotText, one := strings.Cut(target, "/")
	slot := 0
	if one {
		n, err := strconv.Atoi(slotText)
		if err != nil || n < 1 {
			return errs.E(errs.Invalid, "%q: a replica is SERVICE/N, N from 1", target)
		}
		slot = n
	}
	rec, err := s.cfg.Store.Project(project)
	if err != nil {
		return err
	}
	if _, ok := rec.Project.Service(service); !ok {
		return errs.E(errs.NotFound, "project %q has no service %q", project, service)
	}
	out := &lineWriter{w: w}
	mine := func() ([]runtime.Container, error) {
		cs, err := s.cfg.Runtime.List(ctx, project)
		cs = slices.DeleteFunc(cs, func(c runtime.Container) bool { return c.Service != service || slot != 0 && c.Slot != slot })
		slices.SortFunc(cs, func(a, b runtime.Container) int {
			return cmp.Or(cmp.Compare(a.Slot, b.Slot), cmp.Compare(a.Name, b.Name))
		})
		return cs, err
	}
	cs, err := mine()
	if err != nil {
		return err
	}
	if !o.Follow {
		for _, c := range cs {
			s.copyLogs(ctx, c, o, out)
		}
		return nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	reading := map[string]bool{}    // containers whose output is being read
	ended := map[string]time.Time{} // when a container's stream ended: it stopped
	for {
		for _, c := range cs {
			mu.Lock()
			last, again := ended[c.ID]
			start := !reading[c.ID] && (!again || c.State == runtime.Running) // a restarted one goes on where it stopped
			if start {
				reading[c.ID] = true
			}
			mu.Unlock()
			if !start {
				continue
			}
			co := o
			if again {
				co.Since, co.Tail = last, 0
			}
			wg.Go(func() {
				s.copyLogs(ctx, c, co, out)
				mu.Lock()
				reading[c.ID], ended[c.ID] = false, s.cfg.Clock.Now()
				mu.Unlock()
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.cfg.Clock.After(time.Second):
		}
		if cs, err = mine(); err != nil {
			cs = nil // the engine is away: ask again
		}
	}
}

// copyLogs writes one container's output to out, line by line.
func (s *Supervisor) copyLogs(ctx context.Context, c runtime.Container, o runtime.LogOptions, out *lineWriter) {
	rc, err := s.cfg.Runtime.Logs(ctx, c.ID, o)
	if err != nil {
		return // gone meanwhile
	}
	defer rc.Close()
	context.AfterFunc(ctx, func() { rc.Close() })
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if out.line(c.Name, sc.Bytes()) != nil {
			return // the reader left
		}
	}
}

// lineWriter writes whole prefixed lines from several replicas, flushing
// each (an HTTP stream shows it at once).
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) line(name string, text []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := make([]byte, 0, len(name)+3+len(text)+1)
	b = append(append(append(append(b, name...), " | "...), text...), '\n')
	_, err := l.w.Write(b)
	if f, ok := l.w.(interface{ Flush() }); ok && err == nil {
		f.Flush()
	}
	return err
}
