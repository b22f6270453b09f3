package access_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-sh/tend/internal/access"
	"github.com/tend-sh/tend/internal/errs"
)

var now = time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)

func TestTokensKeepOnlyHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	toks, err := access.OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	ro, roSecret, err := toks.Create("ci", access.Read, now)
	if err != nil {
		t.Fatal(err)
	}
	_, adminSecret, err := toks.Create("", access.Admin, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(roSecret, "tend_") || len(roSecret) < 40 || roSecret == adminSecret {
		t.Errorf("secrets %q, %q", roSecret, adminSecret)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), roSecret) || strings.Contains(string(b), adminSecret) {
		t.Errorf("the tokens file holds a secret:\n%s", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("tokens file mode %v, want 0600", fi.Mode().Perm())
	}

	// Reopened, the same secrets check out with their roles; others do not.
	toks, err = access.OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := toks.Check(roSecret); !ok || got.Name != "ci" || got.Role != access.Read {
		t.Errorf("check of the read secret: %+v, %v", got, ok)
	}
	if got, ok := toks.Check(adminSecret); !ok || got.Role != access.Admin || !strings.HasPrefix(got.Name, "token-") {
		t.Errorf("check of the admin secret: %+v, %v", got, ok)
	}
	for _, bad := range []string{"", "tend_", roSecret + "x", roSecret[:len(roSecret)-1], strings.ToUpper(roSecret)} {
		if _, ok := toks.Check(bad); ok {
			t.Errorf("check of %q passed", bad)
		}
	}

	if _, _, err := toks.Create("ci", access.Admin, now); errs.KindOf(err) != errs.Conflict {
		t.Errorf("a second token named ci: %v, want a conflict", err)
	}
	if _, _, err := toks.Create("x", "root", now); errs.KindOf(err) != errs.Invalid {
		t.Errorf("role root: %v, want invalid", err)
	}
	if _, _, err := toks.Create("a b", access.Read, now); errs.KindOf(err) != errs.Invalid {
		t.Errorf("name with a space: %v, want invalid", err)
	}

	if _, err := toks.Remove(ro.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := toks.Check(roSecret); ok {
		t.Error("a removed token still checks out")
	}
	if _, err := toks.Remove("ci"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("removing it again: %v, want not-found", err)
	}
	if list := toks.List(); len(list) != 1 || list[0].Role != access.Admin {
		t.Errorf("left: %+v", list)
	}
}

func TestSelfSignedIsMadeOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	first, err := access.SelfSigned(dir, []string{"10.0.0.7", "tend.example"}, now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := access.SelfSigned(dir, nil, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || again.Created || first.Fingerprint != again.Fingerprint || len(first.Fingerprint) != 95 {
		t.Errorf("first %v %s, again %v %s", first.Created, first.Fingerprint, again.Created, again.Fingerprint)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "key.pem")); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode().Perm())
	}
	leaf := first.TLS.Leaf
	if leaf == nil || leaf.VerifyHostname("tend.example") != nil || leaf.VerifyHostname("10.0.0.7") != nil || leaf.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("certificate names: %+v", leaf)
	}
}
