package spec

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

func TestZZExp(t *testing.T) {
	f := os.Getenv("EXPF")
	o, err := cli.NewProjectOptions([]string{f}, cli.WithEnv([]string{"FOO=bar"}), cli.WithConsistency(false), cli.WithEnvFiles(), cli.WithDotEnv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := o.LoadProject(context.Background())
	if err != nil {
		fmt.Printf("ERR: %q\n", err.Error())
		return
	}
	for _, s := range p.Services {
		b, _ := json.MarshalIndent(s, "", " "); fmt.Printf("%s: %s\n", s.Name, b)
	}
	fmt.Printf("disabled %v\nnets %#v\nvols %#v\n", p.DisabledServices, p.Networks, p.Volumes)
}
