package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/engine/sched"
)

// call sends a request with headers and returns the status and body.
func call(t *testing.T, method, url, body string, header map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func inspectOf(t *testing.T, ts *testServer, header map[string]string) inspectResponse {
	t.Helper()
	code, body := call(t, "GET", ts.URL+"/v1/kv/inspect", "", header)
	if code != 200 {
		t.Fatalf("inspect: %d %s", code, body)
	}
	var r inspectResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPageAndInspector: the page and its assets load without a key, the
// recipe list follows --kv-allow, and /v1/kv/inspect shows a tenant its own
// snapkv sequence (kept positions under the budget, token text per
// position) and never another tenant's.
func TestPageAndInspector(t *testing.T) {
	ts := start(t, sched.Config{}, Config{APIKeys: []string{"ka", "kb"}, AllowMethods: []string{"f16", "snapkv", "q8"}})
	for _, p := range []string{"/", "/web/app.js", "/web/style.css"} {
		if code, body := call(t, "GET", ts.URL+p, "", nil); code != 200 || len(body) == 0 {
			t.Fatalf("GET %s: %d", p, code)
		}
	}
	if code, _ := call(t, "GET", ts.URL+"/v1/kv/inspect", "", nil); code != 401 {
		t.Fatalf("inspect without a key: %d", code)
	}
	code, body := call(t, "GET", ts.URL+"/v1/kv/recipes", "", bearer2("ka"))
	if code != 200 || !strings.Contains(string(body), `"snapkv(budget=0.25`) || strings.Contains(string(body), "kivi") {
		t.Fatalf("recipes: %d %s", code, body)
	}
	req := `{"model":"` + modelID + `","messages":[{"role":"user","content":"` + strings.Repeat("the cache keeps keys and values ", 12) + `"}],"max_tokens":6,"temperature":0,"kv":"snapkv(budget=0.25)"}`
	h := bearer2("ka")
	h[inspectHeader] = "1"
	if code, body := call(t, "POST", ts.URL+"/v1/chat/completions", req, h); code != 200 {
		t.Fatalf("chat: %d %s", code, body)
	}
	r := inspectOf(t, ts, bearer2("ka"))
	s := r.Sequence
	if s == nil || s.Live || !strings.HasPrefix(s.Recipe, "snapkv(") || len(r.Text) < s.Positions || len(s.Streams) == 0 {
		t.Fatalf("tenant a: %+v", r)
	}
	for _, st := range s.Streams {
		if st.Kept >= s.Prompt || len(st.Ranges) == 0 {
			t.Fatalf("layer %d head %d keeps %d of %d prompt tokens", st.Layer, st.Head, st.Kept, s.Prompt)
		}
	}
	if other := inspectOf(t, ts, bearer2("kb")); other.Sequence != nil {
		t.Fatalf("tenant b sees tenant a's sequence %d", other.Sequence.Seq)
	}
}

func bearer2(key string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + key}
}
