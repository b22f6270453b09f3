package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium (Debian's chromium package; .ci/run
// installs it). A machine without it fails the test: the dashboard is
// only tested in a real browser.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the dashboard test needs headless Chromium: apt-get install -y chromium (.ci/run does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin),
		chromedp.NoSandbox,        // CI runs as root
		chromedp.IgnoreCertErrors, // tend's self-signed certificate
		chromedp.WindowSize(1400, 900))
	alloc, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTime)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// login opens the dashboard in a fresh tab of the browser and gives it a token.
func login(t *testing.T, ctx context.Context, base, token string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	// Chromium aborts a load with ERR_NETWORK_CHANGED when the engine adds a
	// network (other tests' projects) meanwhile: load again.
	var err error
	for range 3 {
		if err = chromedp.Do(tab, chromedp.Navigate(base+"/")); err == nil || !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
			break
		}
	}
	if err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	if err := chromedp.Do(tab,
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("app")),
		chromedp.WaitNotVisible(chromedp.ID("login")),
	); err != nil {
		t.Fatalf("log in to the dashboard: %v", err)
	}
	return tab
}

// count is how many elements the page has that match a CSS selector.
func count(t *testing.T, tab context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(tab, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

func waitSelector(t *testing.T, tab context.Context, timeout time.Duration, sel string) {
	t.Helper()
	waitFor(t, timeout, "the page to show "+sel, func() bool { return count(t, tab, sel) > 0 })
}

func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path, _ := filepath.Abs(filepath.Join("testdata", "out", name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestDashboardWatchesItHeal is issue 17's dashboard story in headless
// Chromium against the real daemon and engine: the page asks for a token,
// shows the service, shows a replica killed from outside as restarted live
// (no reload), restarts it by the admin's button, and with a read token
// shows no actions, and its forced POST gets 403 with nothing changed.
func TestDashboardWatchesItHeal(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	d := startDaemon(t, "--listen", addr)
	name, _ := d.up(`
services:
  web:
    image: tend-demo:dev
`)
	admin := d.newToken("admin", "ops")
	ro := d.newToken("read", "viewer")
	base := "https://" + addr
	ctx := browser(t)

	tab := login(t, ctx, base, admin)
	svc := fmt.Sprintf(`section.service[data-project=%q][data-service="web"]`, name)
	replica := fmt.Sprintf(`%s tr.replica[data-container="%s-web-1"][data-state="running"]`, svc, name)
	waitSelector(t, tab, 20*time.Second, replica)
	waitSelector(t, tab, 10*time.Second, `#who[data-role="admin"]`)
	waitSelector(t, tab, 10*time.Second, `#stream-state.live`)
	for _, a := range []string{"scale", "restart", "heal"} {
		if count(t, tab, svc+` button.action[data-action="`+a+`"]`) != 1 {
			t.Errorf("admin token: no %s button", a)
		}
	}
	// The token is asked for once: a reload keeps it for the tab.
	if err := chromedp.Do(tab, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("app")), chromedp.WaitNotVisible(chromedp.ID("login"))); err != nil {
		t.Fatalf("reload: %v", err)
	}
	waitSelector(t, tab, 20*time.Second, replica)
	waitSelector(t, tab, 10*time.Second, `#stream-state.live`)

	// Live: mark the page, kill the replica from outside, and watch the same
	// page (unreloaded) get the restart from the stream.
	restart := fmt.Sprintf(`#journal li.fresh[data-project=%q][data-action="restart"][data-reason="exited"]`, name)
	if n := count(t, tab, restart); n != 0 {
		t.Fatalf("a restart in the journal before the kill: %d", n)
	}
	if err := chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`window.tendMark = "before-kill"`)); err != nil {
		t.Fatal(err)
	}
	docker(t, "kill", name+"-web-1")
	waitSelector(t, tab, 30*time.Second, restart)
	waitSelector(t, tab, 20*time.Second, replica) // running again, in the services panel
	waitFor(t, 10*time.Second, "the restart counted in the services panel", func() bool {
		restarts, _ := chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, replica+" td.restarts")))
		return restarts == "1"
	})
	mark, err := chromedp.Run(tab, chromedp.Evaluate[string](`window.tendMark`))
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(tab, chromedp.TextContent(chromedp.CSS(restart)))
	if err != nil {
		t.Fatal(err)
	}
	if mark != "before-kill" {
		t.Errorf("the page reloaded (mark %q): the restart did not come live", mark)
	}
	if !strings.Contains(text, "code 137") {
		t.Errorf("journal panel entry %q does not say the exit code 137", text)
	}
	// The admin's restart button restarts it by hand, and the page says so.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(svc+` button.action[data-action="restart"]`))); err != nil {
		t.Fatalf("press restart: %v", err)
	}
	waitSelector(t, tab, 30*time.Second, fmt.Sprintf(`#journal li[data-project=%q][data-action="restart"][data-reason="by-hand"]`, name))
	waitFor(t, 10*time.Second, "the notice of the restart", func() bool {
		notice, _ := chromedp.Run(tab, chromedp.TextContent(chromedp.ID("notice")))
		return strings.Contains(notice, "restarted 1 replica(s) of web")
	})
	screenshot(t, tab, "dashboard-admin.png")

	// A read token sees the service but no action, and cannot force one.
	view := login(t, ctx, base, ro)
	waitSelector(t, view, 20*time.Second, svc+" tr.replica")
	waitSelector(t, view, 10*time.Second, `#who[data-role="read"]`)
	if n := count(t, view, "button.action"); n != 0 {
		t.Errorf("read token: %d action buttons shown", n)
	}
	forced := fmt.Sprintf(`fetch("/v1/projects/%s/services/web/scale", {method: "POST",
		headers: {Authorization: "Bearer " + sessionStorage.getItem("tend-token"), "Content-Type": "application/json"},
		body: JSON.stringify({replicas: 3})}).then(r => r.status)`, name)
	status, err := chromedp.Run(view, chromedp.Evaluate[int](forced, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != 403 {
		t.Errorf("read token's forced scale: %d, want 403", status)
	}
	screenshot(t, view, "dashboard-read.png")
	if reps := d.ps(name); len(reps) != 1 {
		t.Errorf("after the refused scale, %d replicas: %+v", len(reps), reps)
	}
	if _, ok := findEvent(d.events(name), "web", "scale", ""); ok {
		t.Error("the refused scale was journaled")
	}
	if _, ok := findEvent(d.events(name), "web", "restart", "by-hand"); !ok {
		t.Error("the admin's restart is not in the journal as by-hand")
	}
}
