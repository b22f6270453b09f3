package reconcile_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/reconcile"
	"github.com/tend-sh/tend/internal/runtime"
	"github.com/tend-sh/tend/internal/spec"
)

// A failed action is a fact in the slot's memory; the next action on that slot
// waits a backoff, so an engine call that keeps failing is no hot loop.
func TestFailedActionsArePaced(t *testing.T) {
	web := service("web")
	failed := reconcile.Outcome(reconcile.History{}, "", errors.New("no such image"), at(0))
	failed = reconcile.Outcome(failed, "", errors.New("no such image"), at(time.Second))
	if failed.Failures != 2 || failed.LastError != "no such image" || !failed.FailedAt.Equal(at(time.Second)) {
		t.Fatalf("outcome of two failures: %+v", failed)
	}
	wait := reconcile.Backoff(web.Restart, web.Tend.Backoff, 2, "failed web/1")

	r := reconcile.Plan(project(web), reconcile.Observed{History: map[reconcile.SlotKey]reconcile.History{key("web", 1): failed}}, at(time.Second+wait/2))
	if len(r.Actions) != 0 {
		t.Fatalf("acted during the failure backoff: %v", actions(r))
	}
	if len(r.Waits) != 1 || !strings.Contains(r.Waits[0].Message, "no such image") || !r.Wake.Equal(at(time.Second+wait)) {
		t.Errorf("waits %+v wake %s; want one naming the error, waking at +%s", r.Waits, since(r.Wake), time.Second+wait)
	}

	r = reconcile.Plan(project(web), reconcile.Observed{History: map[reconcile.SlotKey]reconcile.History{key("web", 1): failed}}, at(time.Second+wait))
	if got := actions(r); len(got) != 1 || !strings.HasPrefix(got[0], "create web/1") {
		t.Errorf("after the backoff: %v, want the create again", got)
	}

	ok := reconcile.Outcome(failed, "c1", nil, at(5*time.Second))
	if ok.Failures != 0 || ok.LastError != "" || ok.Container != "c1" {
		t.Errorf("a success clears the failures and learns the container: %+v", ok)
	}
}

func TestFailedRemovalOutsideTheDesignIsPaced(t *testing.T) {
	web := service("web")
	extra := ctr(web, 2, runtime.Running)
	failed := reconcile.Outcome(reconcile.History{}, "", errors.New("device busy"), at(0))
	obs := reconcile.Observed{
		Containers: []runtime.Container{ctr(web, 1, runtime.Running), extra},
		History:    map[reconcile.SlotKey]reconcile.History{key("web", 2): failed},
	}
	r := reconcile.Plan(project(web), obs, at(100*time.Millisecond))
	if len(r.Actions) != 0 {
		t.Errorf("removal retried during its backoff: %v", actions(r))
	}
	if _, forgotten := r.History[key("web", 2)]; forgotten {
		t.Errorf("the failure was forgotten while the container is still there")
	}
	r = reconcile.Plan(project(web), obs, at(time.Minute))
	if got := actions(r); len(got) != 1 || !strings.HasPrefix(got[0], "remove web/2") {
		t.Errorf("after the backoff: %v, want the removal again", got)
	}
}

// The exit time tend learns from a die event is a few milliseconds later than
// the one the engine reports on inspection; a settled exit must stay settled
// whichever tend sees, so exits are known by the start of the run that ended.
func TestSettledExitIsKnownByItsRun(t *testing.T) {
	job := service("job", restart(spec.RestartNone))
	fromEvent := exited(job, 1, 0, at(time.Second), at(2*time.Second+3*time.Millisecond))
	r := reconcile.Plan(project(job), reconcile.Observed{Containers: []runtime.Container{fromEvent}}, at(3*time.Second))
	if got := actions(r); len(got) != 1 || !strings.HasPrefix(got[0], "settle job/1") {
		t.Fatalf("first sight of the exit: %v, want it settled", got)
	}
	fromInspect := exited(job, 1, 0, at(time.Second), at(2*time.Second))
	r = reconcile.Plan(project(job), reconcile.Observed{Containers: []runtime.Container{fromInspect},
		History: map[reconcile.SlotKey]reconcile.History{key("job", 1): r.History[key("job", 1)]}}, at(4*time.Second))
	if len(r.Actions) != 0 {
		t.Errorf("the same exit, inspected, was settled again: %v", actions(r))
	}
}
