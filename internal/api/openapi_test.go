package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/tend-sh/tend/internal/access"
	"github.com/tend-sh/tend/internal/api"
	"github.com/tend-sh/tend/internal/notify"
	"github.com/tend-sh/tend/internal/store"
)

// openAPI is the parsed document and a compiler of its schemas.
type openAPI struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
}

const docURL = "https://tend.invalid/openapi.json"

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi.yaml: version %v, want 3.1.0 (its schemas are JSON Schema 2020-12)", doc["openapi"])
	}
	// Through JSON, so the schema library sees the numbers and maps it expects.
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, v); err != nil {
		t.Fatal(err)
	}
	return &openAPI{doc: doc, compiler: c}
}

// operations are the document's "METHOD /path" pairs.
func (o *openAPI) operations() []string {
	var ops []string
	for path, item := range o.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if method != "parameters" {
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	o := loadOpenAPI(t)
	tokens, err := access.OpenTokens(t.TempDir() + "/tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	// Every optional route on: metrics and tokens.
	srv := &api.Server{Metrics: http.NotFoundHandler(), Tokens: tokens}
	routes := srv.Patterns()
	slices.Sort(routes)
	ops := o.operations()
	for _, r := range routes {
		if !slices.Contains(ops, r) {
			t.Errorf("the server serves %s; openapi.yaml does not document it", r)
		}
	}
	for _, op := range ops {
		if !slices.Contains(routes, op) {
			t.Errorf("openapi.yaml documents %s; the server has no such route", op)
		}
	}
	// Every $ref points at something.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && o.lookup(ref) == nil {
				t.Errorf("dangling $ref %s", ref)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(o.doc)
}

// lookup follows a local reference such as #/components/schemas/Entry.
func (o *openAPI) lookup(ref string) any {
	var cur any = o.doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
	}
	return cur
}

// schemaPointer is the JSON pointer of the schema the document gives for an
// answer: the operation's response for the status (else its default), of the
// answer's content type. "" when the answer has no documented body.
func (o *openAPI) schemaPointer(t *testing.T, method, pattern string, status int, ctype string) string {
	t.Helper()
	ptr := "#/paths/" + strings.ReplaceAll(strings.ReplaceAll(pattern, "~", "~0"), "/", "~1") + "/" + strings.ToLower(method) + "/responses/"
	resp, ok := o.lookup(ptr + fmt.Sprint(status)).(map[string]any)
	if ok {
		ptr += fmt.Sprint(status)
	} else if resp, ok = o.lookup(ptr + "default").(map[string]any); ok && status >= 400 {
		ptr += "default"
	} else {
		t.Errorf("%s %s: status %d is not documented", method, pattern, status)
		return ""
	}
	if ref, isRef := resp["$ref"].(string); isRef {
		ptr = ref
		resp = o.lookup(ref).(map[string]any)
	}
	content, _ := resp["content"].(map[string]any)
	if content == nil {
		if ctype != "" && status != http.StatusNoContent {
			t.Errorf("%s %s %d: answered %s, document says no body", method, pattern, status, ctype)
		}
		return ""
	}
	if _, ok := content[ctype]; !ok {
		t.Errorf("%s %s %d: content type %q is not documented", method, pattern, status, ctype)
		return ""
	}
	return ptr + "/content/" + strings.ReplaceAll(ctype, "/", "~1") + "/schema"
}

// check validates one answer against the document: JSON whole, JSON lines
// each, server-sent events by their data.
func (o *openAPI) check(t *testing.T, method, pattern string, resp *http.Response, body string) {
	t.Helper()
	ctype, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	ptr := o.schemaPointer(t, method, pattern, resp.StatusCode, ctype)
	if ptr == "" {
		return
	}
	sch, err := o.compiler.Compile(docURL + ptr)
	if err != nil {
		t.Fatalf("compile %s: %v", ptr, err)
	}
	var values []string
	switch ctype {
	case "application/json":
		values = []string{body}
	case "application/x-ndjson":
		values = strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	case "text/event-stream":
		// Each event's data is an Entry.
		sch = o.compiler.MustCompile(docURL + "#/components/schemas/Entry")
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				values = append(values, d)
			}
		}
	default:
		return // a text body: the type is what the document says
	}
	for _, v := range values {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(v))
		if err != nil {
			t.Errorf("%s %s: body is not JSON: %v\n%s", method, pattern, err, v)
			continue
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s %s %d does not match %s:\n%s\n%v", method, pattern, resp.StatusCode, ptr, v, err)
		}
	}
}

// TestResponsesMatchOpenAPI calls the main routes of a real server (over the
// fake runtime) and checks every answer, errors included, against the document.
func TestResponsesMatchOpenAPI(t *testing.T) {
	o := loadOpenAPI(t)
	d := startDaemon(t)
	p := project()
	call := func(method, pattern, path, body string, want int, header ...string) string {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, "http://tend"+path, rd)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := d.raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		o.check(t, method, pattern, resp, string(b))
		return string(b)
	}
	call("PUT", "/v1/projects/{name}", "/v1/projects/demo", mustJSON(t, p), 200)
	eventually(t, "3 ready replicas", func() bool {
		reps, err := d.client.Replicas(t.Context(), "demo")
		return err == nil && len(reps) == 3 && reps[0].Ready && reps[1].Ready && reps[2].Ready
	})
	call("GET", "/v1/version", "/v1/version", "", 200)
	call("GET", "/v1/whoami", "/v1/whoami", "", 200)
	call("GET", "/v1/openapi.yaml", "/v1/openapi.yaml", "", 200)
	call("GET", "/v1/projects", "/v1/projects", "", 200)
	call("GET", "/v1/replicas", "/v1/replicas?project=demo", "", 200)
	call("GET", "/v1/scale", "/v1/scale", "", 200)
	call("GET", "/v1/traffic", "/v1/traffic", "", 200)
	call("POST", "/v1/projects/{name}/services/{service}/scale", "/v1/projects/demo/services/web/scale", `{"replicas":3}`, 200)
	call("POST", "/v1/projects/{name}/services/{service}/heal", "/v1/projects/demo/services/web/heal", "", 409) // not quarantined
	call("POST", "/v1/projects/{name}/services/{service}/restart", "/v1/projects/demo/services/web/restart", "", 200)
	call("POST", "/v1/projects/{name}/services/{service}/restart", "/v1/projects/demo/services/nope/restart", "", 404)
	call("POST", "/v1/projects/{name}/services/{service}/rollback", "/v1/projects/demo/services/web/rollback", "", 409)
	nt := call("POST", "/v1/tokens", "/v1/tokens", `{"name":"ci","role":"read"}`, 201)
	call("GET", "/v1/tokens", "/v1/tokens", "", 200)
	call("DELETE", "/v1/tokens/{name}", "/v1/tokens/ci", "", 204)
	if !strings.Contains(nt, `"secret":"tend_`) {
		t.Errorf("token answer %s", nt)
	}
	ev := call("GET", "/v1/events", "/v1/events?project=demo&action=create", "", 200)
	if n := strings.Count(ev, "\n"); n < 3 {
		t.Errorf("create entries: %d lines\n%s", n, ev)
	}
	sse := call("GET", "/v1/events", "/v1/events?limit=2", "", 200, "Accept", "text/event-stream")
	if strings.Count(sse, "event: entry\n") != 2 || !strings.HasPrefix(sse, "id: ") {
		t.Errorf("SSE answer:\n%s", sse)
	}

	// Bad requests: 4xx with a message, of the documented shape.
	call("GET", "/v1/events", "/v1/events?after=-1", "", 400)
	call("GET", "/v1/events", "/v1/events?limit=1000000", "", 400)
	call("GET", "/v1/events", "/v1/events?follow=maybe", "", 400)
	call("GET", "/v1/replicas", "/v1/replicas?project=nope", "", 404)
	call("PUT", "/v1/projects/{name}", "/v1/projects/other", mustJSON(t, p), 400)
	call("PUT", "/v1/projects/{name}", "/v1/projects/demo", `{"name":"demo"`, 400)
	call("POST", "/v1/projects/{name}/services/{service}/scale", "/v1/projects/demo/services/web/scale", `{}`, 400)
	call("POST", "/v1/projects/{name}/services/{service}/scale", "/v1/projects/demo/services/nope/scale", `{"replicas":1}`, 404)
	call("POST", "/v1/tokens", "/v1/tokens", `{"role":"root"}`, 400)
	call("DELETE", "/v1/tokens/{name}", "/v1/tokens/nobody", "", 404)
	call("POST", "/v1/build", "/v1/build", `{"project":"demo","bogus":1}`, 400)
	big := `{"name":"demo","services":[],"x":"` + strings.Repeat("a", 9<<20) + `"}`
	call("PUT", "/v1/projects/{name}", "/v1/projects/demo", big, 400)

	call("DELETE", "/v1/projects/{name}", "/v1/projects/demo", "", 204)
	call("DELETE", "/v1/projects/{name}", "/v1/projects/demo", "", 404)
}

// TestWebhookPayloadIsDocumented checks the webhooks' generic JSON against
// the document's WebhookPayload.
func TestWebhookPayloadIsDocumented(t *testing.T) {
	o := loadOpenAPI(t)
	sch, err := o.compiler.Compile(docURL + "#/components/schemas/WebhookPayload")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	p := notify.Payload{Version: 1, Project: "demo", Service: "web", Count: 2, First: now, Last: now.Add(time.Second),
		Actions: map[string]int{"restart": 2}, Omitted: 1, Dropped: 3,
		Entries: []store.Entry{{Seq: 7, Time: now, Project: "demo", Service: "web", Slot: 1, Container: "demo-web-1", Action: "restart", Reason: "exited"}}}
	b, _ := json.Marshal(p)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s\n%v", b, err)
	}
}
