package metrics_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGrafanaDashboardNamesRealMetrics: every tend_ metric the example
// Grafana dashboard (examples/grafana/tend.json) queries is one the daemon's
// code defines, so a renamed metric cannot leave the dashboard blank.
func TestGrafanaDashboardNamesRealMetrics(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "examples", "grafana", "tend.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("examples/grafana/tend.json: %v", err)
	}
	defined := map[string]bool{}
	lit := regexp.MustCompile(`"(tend_[a-z_]+)"`)
	err = filepath.WalkDir(filepath.Join(root, "internal"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		src, err := os.ReadFile(p)
		for _, m := range lit.FindAllSubmatch(src, -1) {
			defined[string(m[1])] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`tend_[a-z_]+`)
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			names := used.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %q queries no tend metric", p.Title, q.Expr)
			}
			for _, n := range names {
				if base := strings.TrimSuffix(n, "_bucket"); !defined[base] {
					t.Errorf("panel %q queries %s, which tend does not define", p.Title, n)
				}
			}
		}
	}
}
