package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/chaos"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/docker"
	"github.com/tend-sh/tend/internal/store"
	"github.com/tend-sh/tend/internal/supervisor"
)

// What the faults do, in figures (README "tend chaos").
const (
	slowCPUs  = 0.05               // slow: the replica's CPU quota, in cores
	fillFile  = "/tend-chaos-fill" // disk: the file written in the replica's writable layer
	fillBytes = 64 << 20
	pollEvery = 50 * time.Millisecond
	// journalLag bounds the wait, once converged, for the entries of tend's
	// last actions (journaled when the action returned).
	journalLag = 3 * time.Second
)

// errNotConverged marks a chaos run after which the stack did not converge.
type errNotConverged struct{ msg string }

func (e errNotConverged) Error() string { return e.msg }

func chaosCommand(g *globals) *cobra.Command {
	var cf composeFlags
	var service string
	var every, forD, timeout time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "chaos ACTION",
		Short: "Break a replica behind tend's back (kill, stop, rm, pause, sick, slow, disk), once or on a schedule, and report how tend healed it",
		Long: `Break a replica behind tend's back, once or on a schedule, and report how tend healed it.

ACTION is kill (SIGKILL), stop (docker stop), rm (docker rm -f), pause (docker pause), sick (SIGSTOP its
processes: the engine says running, its liveness fails), slow (CPU throttled to 0.05 cores), disk (a 64 MiB
file in its writable layer); several separated by commas take turns, "all" mixes every one. node-kill and
node-cut need cluster mode. Each fault strikes a random running, ready replica (of --service, if given).
The report, read from the journal and tend's status, says per fault what tend did and when the replica
was ready again, then the stack's state: converged, duplicates, orphans. Exit code 6 when it did not converge.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds, err := chaos.ParseKinds(args[0])
			if err != nil {
				return err
			}
			if forD > 0 && every <= 0 {
				return usageError{fmt.Errorf("--for needs --every")}
			}
			name, err := projectName(cmd.Context(), g, &cf)
			if err != nil {
				return err
			}
			d, err := docker.New(cmd.Context(), docker.Config{})
			if err != nil {
				return err
			}
			defer d.Close()
			progress := io.Writer(os.Stderr)
			if asJSON {
				progress = io.Discard
			}
			run := &chaosRun{c: g.client(), d: d, project: name, service: service, kinds: kinds,
				sched: chaos.Schedule{Every: every, For: forD}, timeout: timeout, progress: progress}
			rep, err := run.run(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := printChaos(os.Stdout, rep); err != nil {
				return err
			}
			if !rep.OK() {
				return errNotConverged{"chaos: the stack did not converge (see the report)"}
			}
			return nil
		},
	}
	cf.add(cmd)
	cmd.Flags().StringVar(&service, "service", "", "strike only this service's replicas")
	cmd.Flags().DurationVar(&every, "every", 0, "inject a fault this often (default: once)")
	cmd.Flags().DurationVar(&forD, "for", 0, "with --every, stop injecting after this long (default: until interrupted)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "after the last fault, wait this long at most for the stack to converge")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// chaosRun is one `tend chaos`: it injects faults on schedule and polls the
// daemon, feeding what it sees to a chaos.Book.
type chaosRun struct {
	c        *api.Client
	d        *docker.Docker
	project  string
	service  string
	kinds    []chaos.Kind
	sched    chaos.Schedule
	timeout  time.Duration
	progress io.Writer

	book  chaos.Book
	after uint64 // the journal's last entry read
	reps  []chaos.Replica
}

func (r *chaosRun) run(ctx context.Context) (chaos.Report, error) {
	if err := r.c.Events(ctx, store.Query{Project: r.project, Limit: 1}, false, func(e store.Entry) error {
		r.after = e.Seq
		return nil
	}); err != nil {
		return chaos.Report{}, err
	}
	start := time.Now()
	if err := r.poll(ctx, start); err != nil {
		return chaos.Report{}, err
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	// Injecting: until the schedule ends or the user interrupts.
inject:
	for n := 0; ; {
		due, ok := r.sched.Due(start, n)
		if !ok {
			break
		}
		if now := time.Now(); !now.Before(due) {
			r.strike(ctx, r.kinds[n%len(r.kinds)], start)
			n++
			continue
		}
		select {
		case <-ctx.Done():
			break inject
		case <-tick.C:
		}
		if err := r.poll(ctx, time.Now()); err != nil {
			if ctx.Err() != nil {
				break
			}
			return chaos.Report{}, err
		}
	}
	// Settling: the user's interrupt ends the injecting, not the report; a
	// second one ends the wait for convergence too.
	sctx, stop := signal.NotifyContext(context.WithoutCancel(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sctx, cancel := context.WithTimeout(sctx, r.timeout)
	defer cancel()
	var state chaos.State
	var settled time.Time
	for {
		now := time.Now()
		if err := r.poll(sctx, now); err != nil {
			if sctx.Err() != nil {
				break
			}
			return chaos.Report{}, err
		}
		cs, err := r.d.List(sctx, r.project)
		if err != nil {
			if sctx.Err() != nil {
				break
			}
			return chaos.Report{}, err
		}
		state = chaos.Assess(r.reps, chaosContainers(cs))
		if state.Converged && r.book.Pending() == 0 && settled.IsZero() {
			settled = now
		}
		// Converged; tend's journal entries of the last actions may be a moment behind.
		if !settled.IsZero() && (r.book.Unexplained() == 0 || now.Sub(settled) > journalLag) {
			break
		}
		select {
		case <-sctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	_ = r.poll(sctx, time.Now()) // the entries written while the last poll was under way
	return r.book.Report(r.project, start, time.Now(), state, settled), nil
}

// strike injects one fault of kind k into a random ready replica.
func (r *chaosRun) strike(ctx context.Context, k chaos.Kind, start time.Time) {
	target, ok := chaos.Pick(r.reps, r.service, rand.Uint64())
	at := time.Now()
	if !ok {
		r.book.Inject(k, chaos.Replica{Service: r.service}, at, "no running, ready replica to strike")
		fmt.Fprintf(r.progress, "%8s  %-5s  no running, ready replica to strike\n", since(start, at), k)
		return
	}
	err := r.inject(ctx, k, target.ID)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	r.book.Inject(k, target, at, msg)
	line := fmt.Sprintf("%8s  %-5s  %s/%d (%s)", since(start, at), k, target.Service, target.Slot, target.Container)
	if err != nil {
		line += "  FAILED: " + msg
	}
	fmt.Fprintln(r.progress, line)
}

func (r *chaosRun) inject(ctx context.Context, k chaos.Kind, id string) error {
	switch k {
	case chaos.Kill:
		return r.d.Kill(ctx, id)
	case chaos.Stop:
		return r.d.StopOutside(ctx, id)
	case chaos.Rm:
		return r.d.RemoveOutside(ctx, id)
	case chaos.Pause:
		return r.d.Pause(ctx, id)
	case chaos.Sick:
		_, err := r.d.StopProcesses(ctx, id)
		return err
	case chaos.Slow:
		return r.d.Throttle(ctx, id, slowCPUs)
	case chaos.Disk:
		return r.d.Fill(ctx, id, fillFile, fillBytes)
	}
	return fmt.Errorf("chaos: %s is not a fault of one host", k)
}

// poll reads the journal's new entries and tend's replicas into the book.
func (r *chaosRun) poll(ctx context.Context, now time.Time) error {
	var entries []chaos.Entry
	err := r.c.Events(ctx, store.Query{Project: r.project, After: r.after}, false, func(e store.Entry) error {
		r.after = max(r.after, e.Seq)
		entries = append(entries, chaos.Entry{Seq: e.Seq, Time: e.Time, Service: e.Service, Slot: e.Slot,
			Action: e.Action, Reason: e.Reason, Message: e.Message, Error: e.Error})
		return nil
	})
	if err != nil {
		return err
	}
	r.book.Journal(entries)
	reps, err := r.c.Replicas(ctx, r.project)
	if err != nil {
		return err
	}
	r.reps = chaosReplicas(reps)
	r.book.Observe(now, r.reps)
	return nil
}

func chaosReplicas(reps []supervisor.Replica) []chaos.Replica {
	out := make([]chaos.Replica, 0, len(reps))
	for _, r := range reps {
		running := r.State == string(runtime.Running)
		out = append(out, chaos.Replica{Service: r.Service, Slot: r.Slot, Container: r.Container, ID: r.ID,
			Running: running, Ready: r.Ready, Failed: r.Failed, Job: r.Ready && !running,
			Restarts: r.Restarts, StartedAt: r.StartedAt})
	}
	return out
}

func chaosContainers(cs []runtime.Container) []chaos.Container {
	out := make([]chaos.Container, 0, len(cs))
	for _, c := range cs {
		out = append(out, chaos.Container{Name: c.Name, Service: c.Service, Slot: c.Slot, Running: c.State == runtime.Running})
	}
	return out
}

func since(start, t time.Time) string {
	return fmt.Sprintf("+%.1fs", t.Sub(start).Seconds())
}

// printChaos prints the report as tables.
func printChaos(out io.Writer, rep chaos.Report) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "tend chaos on %s: %d faults in %s\n\n", rep.Project, len(rep.Faults), rep.Ended.Sub(rep.Started).Round(100*time.Millisecond))
	fmt.Fprintln(w, "#\tAT\tFAULT\tREPLICA\tTEND DID\tREADY AGAIN")
	for _, f := range rep.Faults {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", f.N, since(rep.Started, f.At), f.Kind, faultTarget(f), tendDid(f), readyAgain(f))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "FAULT\tCOUNT\tTOOK IT OUT\tNOT READY AGAIN\tP50\tP99\tMAX")
	for _, k := range rep.Kinds {
		count := fmt.Sprint(k.Faults)
		if k.Failed > 0 {
			count += fmt.Sprintf(" (%d failed)", k.Failed)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", k.Kind, count, k.Down, k.NotRecovered, secs(k.P50), secs(k.P99), secs(k.Max))
	}
	fmt.Fprintln(w)
	a := rep.After
	verdict := "converged"
	if !a.Converged {
		verdict = "NOT converged"
		if len(a.NotReady) > 0 {
			verdict += "; not ready: " + strings.Join(a.NotReady, ", ")
		}
	} else if rep.Settled >= 0 {
		verdict += fmt.Sprintf(" %s after the last fault", secs(rep.Settled))
	}
	fmt.Fprintf(w, "after: %s; duplicates %d; orphans %d\n", verdict, len(a.Duplicates), len(a.Orphans))
	for _, d := range a.Duplicates {
		fmt.Fprintf(w, "  duplicate %s\n", d)
	}
	for _, o := range a.Orphans {
		fmt.Fprintf(w, "  orphan %s\n", o)
	}
	claimed := 0
	for _, f := range rep.Faults {
		claimed += len(f.Entries)
	}
	fmt.Fprintf(w, "journal: %d entries during the run, %d answer a fault, %d other\n", claimed+len(rep.Other), claimed, len(rep.Other))
	for _, e := range rep.Other {
		fmt.Fprintf(w, "  other: %s/%d %s %s: %s\n", e.Service, e.Slot, e.Action, e.Reason, clip(e.Message, 80))
	}
	return w.Flush()
}

func faultTarget(f chaos.Fault) string {
	if f.Slot == 0 {
		return "-"
	}
	return fmt.Sprintf("%s/%d", f.Service, f.Slot)
}

// tendDid sums up the journal entries of a fault's own slot: "restart exited, ready".
func tendDid(f chaos.Fault) string {
	if f.Error != "" {
		return "(not injected: " + clip(f.Error, 50) + ")"
	}
	var steps []string
	others := 0
	for _, e := range f.Entries {
		if e.Service != f.Service || e.Slot != f.Slot {
			others++
			continue
		}
		s := e.Action
		if e.Reason != "" {
			s += " " + e.Reason
		}
		if e.Error != "" {
			s += " (failed)"
		}
		if len(steps) == 0 || steps[len(steps)-1] != s {
			steps = append(steps, s)
		}
	}
	out := strings.Join(steps, ", ")
	if out == "" {
		out = "nothing"
	}
	if others > 0 {
		out += fmt.Sprintf(" (+%d elsewhere)", others)
	}
	return clip(out, 70)
}

func readyAgain(f chaos.Fault) string {
	switch d := f.Recovery(); {
	case f.Error != "":
		return "-"
	case d < 0 && !f.Down:
		return "NOT HEALED (tend saw nothing wrong)" // e.g. a hung replica no check looks at
	case d < 0:
		return "NOT READY"
	case !f.Down:
		return "stayed ready"
	default:
		return secs(d)
	}
}

func secs(d time.Duration) string {
	return fmt.Sprintf("%.2fs", d.Seconds())
}
