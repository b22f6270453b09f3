package spec

import (
	"reflect"
	"testing"
)

// TestMessages checks the rendering word for word: it is the user interface.
func TestMessages(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"error, all parts", (&Error{File: "compose.yaml", Service: "web", Key: "deploy.restart_policy.condition", Message: `must be one of any, on-failure, none (got "sometimes")`}).Error(),
			`compose.yaml: service "web": deploy.restart_policy.condition: must be one of any, on-failure, none (got "sometimes")`},
		{"error, no file", (&Error{Service: "web", Key: "image", Message: "required"}).Error(), `service "web": image: required`},
		{"error, no service", (&Error{File: "compose.yaml", Key: "secrets", Message: "bad"}).Error(), `compose.yaml: secrets: bad`},
		{"error, message only", (&Error{Message: "no project"}).Error(), `no project`},
		{"warning", Warning{File: "compose.yaml", Service: "web", Key: "cap_add", Message: "not honoured by tend, ignored"}.String(),
			`compose.yaml: service "web": cap_add: not honoured by tend, ignored`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diff(t, "message", tt.got, tt.want)
		})
	}
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}
