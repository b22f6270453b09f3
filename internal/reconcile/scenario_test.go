package reconcile_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/runtime/fake"
	"github.com/tend-sh/tend/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the expected output of the testdata scenarios")

// TestScenarios runs the stories in testdata/*.txt: the planner in a loop with
// the fake runtime carrying out its actions, as the supervisor would, while
// time advances and the engine's part is played by the script.
//
// A script is a list of commands, one a line; blank lines and lines starting
// with # are comments. A command that prints is followed by "----" and its
// expected output, ending at a blank line. Times print as offsets from the
// scenario's start. `go test -run TestScenarios -update` rewrites the outputs.
//
//	service NAME [key=value...] [healthcheck]
//	        add or change a service of project "demo". Keys: replicas, image,
//	        restart (any, on-failure, none), delay, max_attempts, window,
//	        initial, max, reset_after, depends_on (svc:condition,...), network_mode.
//	        Defaults: 1 replica, restart any, backoff 1s doubling to 1m, reset after 10s.
//	drop-service NAME   take a service out of the project
//	advance DURATION    move the clock forward
//	wake                move the clock to the wake time of the last plan
//	exit SVC/SLOT [code=N] [oom|held]   the slot's container exits (code 1 by default);
//	        oom: killed by the OOM killer (code 137); held: the command exits
//	        inside its container, as under tend's shim
//	health SVC/SLOT HEALTH   set its health (healthy, unhealthy, starting)
//	sick SVC/SLOT [CAUSE]   tend's checks condemn it (cause liveness by default)
//	suspect SVC/SLOT / well SVC/SLOT   its liveness begins to fail / passes again
//	ready SVC/SLOT / unready SVC/SLOT   tend's readiness verdict on it
//	        SVC/SLOT names the slot's own container; SVC/SLOT+ its replacement (surge)
//	delete SVC/SLOT     remove its container outside tend
//	start SVC/SLOT      start its container outside tend (docker start)
//	pause SVC/SLOT      pause its container outside tend (docker pause)
//	engine-down / engine-up   the engine becomes unreachable / answers again (an outage the supervisor saw)
//	fail-start [N]      fail the next N (1) starts, as an engine that cannot start it
//	plan                observe, plan, remember the History, carry out the actions; prints them
//	state               print the containers and the remembered History
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in testdata: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runScenario(t, file) })
	}
}

// step is one command of a script with its expected output.
type step struct {
	line      int
	cmd       string
	hasExpect bool
	expect    []string
}

// item is a line kept as it is (comment, blank) or a step.
type item struct {
	raw  string
	step *step
}

func parseScript(text string) []item {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var items []item
	for i := 0; i < len(lines); {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			items = append(items, item{raw: lines[i]})
			i++
			continue
		}
		st := &step{line: i + 1, cmd: l}
		i++
		if i < len(lines) && lines[i] == "----" {
			st.hasExpect = true
			for i++; i < len(lines) && lines[i] != ""; i++ {
				st.expect = append(st.expect, lines[i])
			}
		}
		items = append(items, item{step: st})
	}
	return items
}

func runScenario(t *testing.T, file string) {
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	items := parseScript(string(text))
	w := newWorld(t)
	var out strings.Builder
	for _, it := range items {
		if it.step == nil {
			out.WriteString(it.raw + "\n")
			continue
		}
		st := it.step
		got, err := w.do(st.cmd)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v\nthe script ran so far:\n%s", file, st.line, st.cmd, err, out.String())
		}
		out.WriteString(st.cmd + "\n")
		if len(got) > 0 || st.hasExpect {
			out.WriteString("----\n")
			for _, l := range got {
				out.WriteString(l + "\n")
			}
		}
		if !*update && !slices.Equal(got, st.expect) {
			t.Errorf("%s:%d: %s:\n got:\n\t%s\nwant:\n\t%s", file, st.line, st.cmd,
				strings.Join(got, "\n\t"), strings.Join(st.expect, "\n\t"))
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// world is the planner's surroundings in a scenario.
type world struct {
	ctx  context.Context
	rt   *fake.Fake
	p    *spec.Project
	hist map[reconcile.SlotKey]reconcile.History
	now  time.Time
	wake time.Time
	// health is what tend's checks say, by container; a container removed
	// takes its verdict with it, as the supervisor's would.
	health map[string]reconcile.Health
	// down: the engine's outages the supervisor saw (engine-down, engine-up).
	down []reconcile.Span
}

func newWorld(t *testing.T) *world {
	w := &world{ctx: t.Context(), rt: fake.New(), p: &spec.Project{Name: "demo"},
		hist: map[reconcile.SlotKey]reconcile.History{}, now: t0, health: map[string]reconcile.Health{}}
	w.rt.SetClock(func() time.Time { return w.now })
	return w
}

func (w *world) do(cmd string) ([]string, error) {
	f := strings.Fields(cmd)
	args := f[1:]
	switch f[0] {
	case "service":
		return nil, w.service(args)
	case "drop-service":
		if len(args) != 1 {
			return nil, errors.New("want a service name")
		}
		w.p.Services = slices.DeleteFunc(w.p.Services, func(s spec.Service) bool { return s.Name == args[0] })
		return nil, nil
	case "advance":
		d, err := time.ParseDuration(strings.Join(args, ""))
		if err != nil {
			return nil, err
		}
		w.now = w.now.Add(d)
		return nil, nil
	case "wake":
		if w.wake.IsZero() || w.wake.Before(w.now) {
			return nil, fmt.Errorf("no wake ahead (wake %s, now %s)", since(w.wake), since(w.now))
		}
		w.now = w.wake
		return nil, nil
	case "exit", "health", "delete", "start", "pause":
		return nil, w.engine(f[0], args)
	case "sick", "suspect", "well", "ready", "unready":
		return nil, w.verdict(f[0], args)
	case "engine-down":
		w.down = append(w.down, reconcile.Span{From: w.now})
		return nil, nil
	case "engine-up":
		if len(w.down) == 0 || !w.down[len(w.down)-1].To.IsZero() {
			return nil, errors.New("engine-up without engine-down")
		}
		w.down[len(w.down)-1].To = w.now
		return nil, nil
	case "fail-start":
		n := 1
		if len(args) > 0 {
			var err error
			if n, err = strconv.Atoi(args[0]); err != nil {
				return nil, err
			}
		}
		for range n {
			w.rt.FailNext(fake.MethodStart, errors.New("engine: cannot start container"))
		}
		return nil, nil
	case "plan":
		return w.plan()
	case "state":
		return w.state(), nil
	}
	return nil, fmt.Errorf("unknown command %q", f[0])
}

// service adds or changes a service from key=value arguments.
func (w *world) service(args []string) error {
	if len(args) == 0 {
		return errors.New("want a service name")
	}
	s := service(args[0])
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "replicas":
			s.Replicas, err = strconv.Atoi(v)
		case "image":
			s.Image = v
		case "network_mode":
			s.NetworkMode, s.Networks = v, nil
		case "restart":
			s.Restart.Condition = spec.Condition(v)
		case "max_attempts":
			s.Restart.MaxAttempts, err = strconv.Atoi(v)
		case "delay":
			s.Restart.Delay, err = time.ParseDuration(v)
		case "window":
			s.Restart.Window, err = time.ParseDuration(v)
		case "initial":
			s.Tend.Backoff.Initial, err = time.ParseDuration(v)
		case "max":
			s.Tend.Backoff.Max, err = time.ParseDuration(v)
		case "reset_after":
			s.Tend.Backoff.ResetAfter, err = time.ParseDuration(v)
		case "healthcheck":
			s.Healthcheck = &spec.Healthcheck{Test: []string{"CMD", "/app", "-probe"}}
		case "depends_on":
			for d := range strings.SplitSeq(v, ",") {
				name, cond, _ := strings.Cut(d, ":")
				s.DependsOn = append(s.DependsOn, spec.Dependency{Service: name, Condition: spec.DependencyCondition(cond), Required: true})
			}
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
	}
	if i := slices.IndexFunc(w.p.Services, func(o spec.Service) bool { return o.Name == s.Name }); i >= 0 {
		w.p.Services[i] = s
	} else {
		w.p.Services = append(w.p.Services, s)
		slices.SortFunc(w.p.Services, func(a, b spec.Service) int { return strings.Compare(a.Name, b.Name) })
	}
	return nil
}

// engine plays the engine's part on a slot's only container.
func (w *world) engine(cmd string, args []string) error {
	if len(args) == 0 {
		return errors.New("want service/slot")
	}
	c, err := w.slotContainer(args[0])
	if err != nil {
		return err
	}
	switch cmd {
	case "exit":
		code, how := 1, ""
		for _, a := range args[1:] {
			if v, ok := strings.CutPrefix(a, "code="); ok {
				if code, err = strconv.Atoi(v); err != nil {
					return err
				}
				continue
			}
			if a != "oom" && a != "held" {
				return fmt.Errorf("want code=N, oom or held, got %q", a)
			}
			how = a
		}
		switch how {
		case "oom":
			return w.rt.OOMKill(c.ID)
		case "held":
			return w.rt.ExitHeld(c.ID, code)
		}
		return w.rt.Exit(c.ID, code)
	case "health":
		if len(args) != 2 {
			return errors.New("want service/slot health")
		}
		return w.rt.SetHealth(c.ID, runtime.Health(args[1]))
	case "start":
		return w.rt.Start(w.ctx, c.ID)
	case "pause":
		return w.rt.Pause(c.ID)
	default:
		return w.rt.Delete(c.ID)
	}
}

func (w *world) slotContainer(ref string) (runtime.Container, error) {
	svc, n, _ := strings.Cut(ref, "/")
	n, surge := strings.CutSuffix(n, "+")
	slot, err := strconv.Atoi(n)
	if err != nil {
		return runtime.Container{}, fmt.Errorf("want service/slot, got %q", ref)
	}
	cs, err := w.rt.List(w.ctx, "demo")
	if err != nil {
		return runtime.Container{}, err
	}
	name := runtime.ContainerName("demo", svc, slot)
	if surge {
		name = runtime.ContainerName("demo", svc, slot) + "-next"
	}
	cs = slices.DeleteFunc(cs, func(c runtime.Container) bool { return c.Service != svc || c.Slot != slot || c.Name != name })
	if len(cs) != 1 {
		return runtime.Container{}, fmt.Errorf("%s has %d containers, want 1", ref, len(cs))
	}
	return cs[0], nil
}

// plan observes, plans and carries out the plan as the supervisor does:
// memory first, then removals, then the rest.
func (w *world) plan() ([]string, error) {
	cs, err := w.rt.List(w.ctx, "demo")
	if err != nil {
		return nil, err
	}
	r := reconcile.Plan(w.p, reconcile.Observed{Containers: cs, History: w.hist, Health: w.health, EngineDown: w.down}, w.now)
	remember(w.hist, r)
	w.wake = r.Wake
	var out []string
	acts := slices.Clone(r.Actions)
	slices.SortStableFunc(acts, func(a, b reconcile.Action) int {
		return boolInt(a.Kind != reconcile.Remove) - boolInt(b.Kind != reconcile.Remove)
	})
	for _, a := range acts {
		line := fmt.Sprintf("%s %s/%d", a.Kind, a.Service, a.Slot)
		if a.Container != "" {
			line += " " + a.Container
		}
		if a.Surge != "" {
			line += " <- " + a.Surge
		}
		out = append(out, fmt.Sprintf("%s %s: %s", line, a.Reason, a.Message))
		if err := w.execute(a); err != nil {
			out = append(out, "  error: "+err.Error())
		}
	}
	for _, wt := range r.Waits {
		until := ""
		if !wt.Until.IsZero() {
			until = " until " + since(wt.Until)
		}
		out = append(out, fmt.Sprintf("wait %s/%d%s: %s", wt.Service, wt.Slot, until, wt.Message))
	}
	if !r.Wake.IsZero() {
		out = append(out, "wake "+since(r.Wake))
	}
	if len(out) == 0 {
		out = append(out, "nothing to do")
	}
	return out, nil
}

func (w *world) execute(a reconcile.Action) error {
	svc, _ := w.p.Service(a.Service)
	create := func() error {
		id, err := w.rt.Create(w.ctx, w.p, svc, runtime.Replica{Slot: a.Slot, Name: runtime.ContainerName(w.p.Name, svc.Name, a.Slot)})
		if err != nil {
			return err
		}
		return w.rt.Start(w.ctx, id)
	}
	switch a.Kind {
	case reconcile.Create:
		return create()
	case reconcile.Start, reconcile.Restart:
		return w.rt.Start(w.ctx, a.Container)
	case reconcile.Replace:
		if err := w.rt.Remove(w.ctx, a.Container); err != nil {
			return err
		}
		return create()
	case reconcile.Remove:
		return w.rt.Remove(w.ctx, a.Container)
	case reconcile.Surge:
		id, err := w.rt.Create(w.ctx, w.p, svc, runtime.Replica{Slot: a.Slot, Name: runtime.SurgeName(w.p.Name, svc, a.Slot)})
		if err != nil {
			return err
		}
		return w.rt.Start(w.ctx, id)
	case reconcile.Takeover:
		if a.Container != "" {
			if err := w.rt.Remove(w.ctx, a.Container); err != nil {
				return err
			}
		}
		return w.rt.Rename(w.ctx, a.Surge, runtime.ContainerName(w.p.Name, svc.Name, a.Slot))
	case reconcile.Unpause:
		return w.rt.Unpause(w.ctx, a.Container)
	}
	return nil
}

// verdict sets what tend's checks say of a container.
func (w *world) verdict(cmd string, args []string) error {
	if len(args) == 0 {
		return errors.New("want service/slot")
	}
	c, err := w.slotContainer(args[0])
	if err != nil {
		return err
	}
	h := w.health[c.ID]
	switch cmd {
	case "sick":
		h.Sick, h.Cause, h.Detail = true, reconcile.ReasonLiveness, "liveness probe failed 3 times: HTTP 503: sick"
		if len(args) > 1 {
			h.Cause = reconcile.Reason(args[1])
		}
	case "suspect":
		h.Suspect, h.Detail = true, "liveness probe failed once (threshold 3): HTTP 503: sick"
	case "well":
		h.Sick, h.Suspect, h.Cause, h.Detail = false, false, "", ""
	case "ready":
		h.Ready, h.ReadyRun = true, c.StartedAt // as the supervisor remembers it
	default:
		h.Ready = false
	}
	w.health[c.ID] = h
	return nil
}

// state prints the containers, then the remembered slots.
func (w *world) state() []string {
	cs, _ := w.rt.List(w.ctx, "demo")
	slices.SortStableFunc(cs, func(a, b runtime.Container) int {
		return strings.Compare(fmt.Sprintf("%s/%03d", a.Service, a.Slot), fmt.Sprintf("%s/%03d", b.Service, b.Slot))
	})
	var out []string
	for _, c := range cs {
		line := fmt.Sprintf("%s/%d %s %s", c.Service, c.Slot, c.ID, c.State)
		if strings.HasSuffix(c.Name, "-next") {
			line = fmt.Sprintf("%s/%d+ %s %s", c.Service, c.Slot, c.ID, c.State)
		}
		if c.Health != runtime.HealthNone {
			line += " " + string(c.Health)
		}
		if c.State == runtime.Exited {
			line += fmt.Sprintf(" code=%d", c.ExitCode)
			if c.OOMKilled {
				line += " oom-killed"
			}
			if c.Held {
				line += " held"
			}
		}
		if !c.StartedAt.IsZero() {
			line += " started=" + since(c.StartedAt)
		}
		if !c.FinishedAt.IsZero() {
			line += " finished=" + since(c.FinishedAt)
		}
		out = append(out, line)
	}
	keys := slices.SortedFunc(maps.Keys(w.hist), func(a, b reconcile.SlotKey) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		h := w.hist[k]
		line := fmt.Sprintf("history %s: container=%s restarts=%d", k, h.Container, h.Restarts)
		if len(h.Streak) > 0 {
			ts := make([]string, len(h.Streak))
			for i, s := range h.Streak {
				ts[i] = since(s)
			}
			line += " streak=[" + strings.Join(ts, " ") + "]"
		}
		if !h.Settled.IsZero() {
			line += " settled=" + since(h.Settled)
		}
		if !h.ReadyRun.IsZero() {
			line += " ready-run=" + since(h.ReadyRun)
		}
		if h.Done {
			line += " done"
		}
		if h.GaveUp {
			line += " gave-up"
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		out = append(out, "empty")
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
