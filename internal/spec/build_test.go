package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

func validBuild() *Build {
	return &Build{Context: "/src/web", Dockerfile: "Dockerfile", Args: map[string]string{"V": "1"}, Labels: map[string]string{"team": "web"}}
}

func TestValidateBuild(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Project)
		want   string
	}{
		{"valid", func(p *Project) { p.Services[1].Build = validBuild() }, ""},
		{"inline Dockerfile", func(p *Project) {
			p.Services[1].Build = &Build{Context: "/src/web", DockerfileInline: "FROM scratch"}
		}, ""},
		{"no context", func(p *Project) { p.Services[1].Build = &Build{Dockerfile: "Dockerfile"} },
			`service "web": build.context: required`},
		{"relative context", func(p *Project) { p.Services[1].Build = &Build{Context: "web", Dockerfile: "Dockerfile"} },
			`service "web": build.context: "web" is not an absolute path`},
		{"no Dockerfile", func(p *Project) { p.Services[1].Build = &Build{Context: "/src/web"} },
			`service "web": build.dockerfile: required (or dockerfile_inline)`},
		{"both Dockerfiles", func(p *Project) {
			p.Services[1].Build = &Build{Context: "/src/web", Dockerfile: "Dockerfile", DockerfileInline: "FROM scratch"}
		}, `service "web": build: dockerfile and dockerfile_inline are mutually exclusive`},
		{"unnamed argument", func(p *Project) {
			b := validBuild()
			b.Args[""] = "x"
			p.Services[1].Build = b
		}, `service "web": build.args: an argument has no name`},
		{"unnamed label", func(p *Project) {
			b := validBuild()
			b.Labels[""] = "x"
			p.Services[1].Build = b
		}, `service "web": build.labels: a label has no name`},
		{"one image, two sections", func(p *Project) {
			p.Services[0].Image, p.Services[0].Build = "web:1", &Build{Context: "/src/db", Dockerfile: "Dockerfile"}
			p.Services[1].Build = validBuild()
		}, `service "web": build: image web:1 is also built by service "db", from a different build section`},
		{"one image, one section", func(p *Project) {
			p.Services[0].Image, p.Services[0].Build = "web:1", validBuild()
			p.Services[1].Build = validBuild()
			p.Services[1].Build.ImageID = "sha256:abc" // found by one, not yet by the other: still the same section
		}, ""},
		{"one image, built by one service only", func(p *Project) {
			p.Services[0].Image = "web:1"
			p.Services[1].Build = validBuild()
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validProject()
			tt.mutate(p)
			got := ""
			if err := Validate(p); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCheckBuild(t *testing.T) {
	if err := CheckBuild("web", validBuild()); err != nil {
		t.Errorf("valid section: %v", err)
	}
	if err := CheckBuild("web", nil); err == nil || err.Error() != `service "web": build: required` {
		t.Errorf("no section: %v", err)
	}
	if err := CheckBuild("web", &Build{Context: "/x"}); err == nil || !strings.Contains(err.Error(), "build.dockerfile") {
		t.Errorf("section without Dockerfile: %v", err)
	}
}

// TestBuildHash: the image a section built decides whether replicas are
// replaced, not the section's inputs; a service without a section hashes as
// it did before sections existed.
func TestBuildHash(t *testing.T) {
	svc := validProject().Services[1]
	plain := svc.Hash()
	b, _ := json.Marshal(svc)
	if strings.Contains(string(b), `"build"`) {
		t.Errorf("a service without a build section marshals a build key: %s", b)
	}

	svc.Build = validBuild()
	svc.Build.ImageID = "sha256:1"
	built := svc.Hash()
	if built == plain {
		t.Error("a built image does not change the hash")
	}
	svc.Build.Args = map[string]string{"V": "2"}
	svc.Build.Context = "/elsewhere"
	if svc.Hash() != built {
		t.Error("changed build inputs without a rebuild change the hash")
	}
	svc.Build.ImageID = "sha256:2"
	if svc.Hash() == built {
		t.Error("a rebuilt image does not change the hash")
	}
}
