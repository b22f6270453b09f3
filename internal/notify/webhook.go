package notify

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/store"
)

// Webhook is one receiver and the entries it wants.
type Webhook struct {
	URL string `yaml:"url"`
	// Format is "json" (the default: a Payload) or "slack" (a message of
	// Slack's incoming webhooks, which Mattermost and others take too).
	Format string `yaml:"format"`
	// Services, when set, keeps only the entries of these services, named
	// "service" or "project/service".
	Services []string `yaml:"services"`
	// Actions, when set, keeps only entries of these actions, e.g. restart, replace, quarantine.
	Actions []string `yaml:"actions"`
}

// Check says what is wrong with w, if anything.
func (w Webhook) Check() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errs.E(errs.Invalid, "webhook %q: want an http:// or https:// URL", Redact(w.URL))
	}
	switch w.Format {
	case "", "json", "slack":
	default:
		return errs.E(errs.Invalid, "webhook %s: format must be json or slack (got %q)", Redact(w.URL), w.Format)
	}
	return nil
}

// Redact is a webhook's URL fit for a log: scheme and host only, since the
// path of many webhooks (Slack's among them) is their secret.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(webhook)"
	}
	return u.Scheme + "://" + u.Host + "/..."
}

// wants reports whether e passes w's filters.
func (w Webhook) wants(e store.Entry) bool {
	if len(w.Actions) > 0 && !slices.Contains(w.Actions, e.Action) {
		return false
	}
	if len(w.Services) > 0 && !slices.Contains(w.Services, e.Service) && !slices.Contains(w.Services, e.Project+"/"+e.Service) {
		return false
	}
	return true
}

// body is p as w's format sends it.
func (w Webhook) body(p Payload) ([]byte, error) {
	if w.Format == "slack" {
		return json.Marshal(map[string]string{"text": slackText(p)})
	}
	return json.Marshal(p)
}

// slackText words a payload for people: a summary line, then the entries.
func slackText(p Payload) string {
	var b strings.Builder
	who := p.Project
	if p.Service != "" {
		who += "/" + p.Service
	}
	if who == "" {
		who = "the daemon"
	}
	var counts []string
	for _, a := range slices.Sorted(maps.Keys(p.Actions)) {
		counts = append(counts, fmt.Sprintf("%d %s", p.Actions[a], a))
	}
	fmt.Fprintf(&b, "*tend* %s: %s", who, strings.Join(counts, ", "))
	if p.Count > 1 {
		fmt.Fprintf(&b, " (%s to %s)", p.First.UTC().Format(time.TimeOnly), p.Last.UTC().Format("15:04:05 UTC"))
	}
	for _, e := range p.Entries {
		fmt.Fprintf(&b, "\n• %s %s", e.Time.UTC().Format(time.TimeOnly), e.Action)
		if e.Reason != "" {
			fmt.Fprintf(&b, " (%s)", e.Reason)
		}
		if e.Container != "" {
			fmt.Fprintf(&b, " %s", e.Container)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
		if e.Error != "" {
			fmt.Fprintf(&b, " - failed: %s", e.Error)
		}
	}
	if p.Omitted > 0 {
		fmt.Fprintf(&b, "\n… and %d more", p.Omitted)
	}
	if p.Dropped > 0 {
		fmt.Fprintf(&b, "\n(%d earlier notifications could not be delivered)", p.Dropped)
	}
	return b.String()
}

// redactErr is err's text with the webhook's URL redacted: net/http's errors quote it.
func redactErr(err error, raw string) string {
	return strings.ReplaceAll(err.Error(), raw, Redact(raw))
}
