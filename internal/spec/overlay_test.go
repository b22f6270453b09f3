package spec

import (
	"reflect"
	"testing"
)

func TestOverlay(t *testing.T) {
	base := &Project{Name: "dev",
		Services: []Service{{Name: "mysql", Image: "mysql:8"}, {Name: "nginx", Image: "nginx:1"}},
		Networks: []Network{{Key: "backend", Name: "dev_backend"}, {Key: "default", Name: "dev_default"}},
		Volumes:  []Volume{{Key: "db", Name: "dev_db"}},
	}
	sel := &Project{Name: "dev",
		Services: []Service{{Name: "mysql", Image: "mysql:9"}, {Name: "redis", Image: "redis:7"}},
		Networks: []Network{{Key: "default", Name: "dev_default"}},
		Volumes:  []Volume{{Key: "cache", Name: "dev_cache"}},
	}
	got := Overlay(base, sel)
	want := &Project{Name: "dev",
		// the selected mysql replaces the running one; nginx, not selected, stays
		Services: []Service{{Name: "mysql", Image: "mysql:9"}, {Name: "nginx", Image: "nginx:1"}, {Name: "redis", Image: "redis:7"}},
		Networks: []Network{{Key: "backend", Name: "dev_backend"}, {Key: "default", Name: "dev_default"}},
		Volumes:  []Volume{{Key: "cache", Name: "dev_cache"}, {Key: "db", Name: "dev_db"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Overlay:\n got %+v\nwant %+v", got, want)
	}
	if base.Services[0].Image != "mysql:8" {
		t.Error("Overlay changed its base")
	}
}
