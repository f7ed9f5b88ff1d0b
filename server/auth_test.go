package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kvgo/kvgo/engine/sched"
	"github.com/kvgo/kvgo/kv/reuse/prefix"
)

// do sends a request with headers and returns the status and body.
func (ts *testServer) do(t *testing.T, method, path, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
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
	return resp, out
}

func bearer(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

func TestAPIKeys(t *testing.T) {
	ts := start(t, sched.Config{}, Config{APIKeys: []string{"sk-one", " sk-two "}})
	gen := `{"model":"kvgo-tiny","prompt":"hi","max_tokens":2}`
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		status             int
	}{
		{"no key", "POST", "/v1/completions", nil, 401},
		{"wrong key", "POST", "/v1/completions", bearer("sk-three"), 401},
		{"empty bearer", "POST", "/v1/completions", bearer(""), 401},
		{"basic auth", "POST", "/v1/completions", map[string]string{"Authorization": "Basic c2stb25lOg=="}, 401},
		{"first key", "POST", "/v1/completions", bearer("sk-one"), 200},
		{"second key, trimmed", "POST", "/v1/completions", bearer("sk-two"), 200},
		{"lower-case scheme", "POST", "/v1/completions", map[string]string{"Authorization": "bearer sk-one"}, 200},
		{"X-Api-Key", "POST", "/v1/completions", map[string]string{"X-Api-Key": "sk-two"}, 200},
		{"chat without a key", "POST", "/v1/chat/completions", nil, 401},
		{"metrics without a key", "GET", "/metrics", nil, 401},
		{"metrics with a key", "GET", "/metrics", bearer("sk-one"), 200},
		{"an unknown path without a key", "GET", "/v2/secret", nil, 401},
		{"health is public", "GET", "/health", nil, 200},
		{"the model list is public", "GET", "/v1/models", nil, 200},
		{"a model needs a key", "GET", "/v1/models/kvgo-tiny", nil, 401},
	} {
		resp, out := ts.do(t, tc.method, tc.path, gen, tc.header)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, out, tc.status)
		}
		if tc.status == 401 {
			e := errorBody(t, out)
			if e["code"] != "invalid_api_key" || e["type"] != "authentication_error" || resp.Header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("%s: 401 %s (WWW-Authenticate %q)", tc.name, out, resp.Header.Get("WWW-Authenticate"))
			}
			if strings.Contains(string(out), "sk-") {
				t.Errorf("%s: the 401 body quotes a key: %s", tc.name, out)
			}
		}
	}
	if _, err := New(Config{Engine: ts.srv.eng, Sched: ts.sch, ModelID: modelID, APIKeys: []string{" ", ""}}); err == nil {
		t.Error("a server whose keys are all empty was built: it would accept no key or any")
	}
}

func TestTenantOf(t *testing.T) {
	s := &Server{keys: newKeyring([]string{"sk-one", "sk-two"})}
	tenant := func(h map[string]string, salt string) string {
		t.Helper()
		r := httptest.NewRequest("POST", "/v1/completions", nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		r, e := s.authenticate(r)
		if e != nil {
			t.Fatal(e.Message)
		}
		return tenantOf(r, salt)
	}
	one, two := tenant(bearer("sk-one"), ""), tenant(bearer("sk-two"), "")
	oneX := tenant(map[string]string{"X-Api-Key": "sk-one"}, "")
	saltA, saltB := tenant(bearer("sk-one"), "a"), tenant(bearer("sk-one"), "b")
	twoA := tenant(bearer("sk-two"), "a")
	all := []string{one, two, saltA, saltB, twoA}
	for i := range all {
		for j := range i {
			if all[i] == all[j] {
				t.Errorf("tenants %d and %d are both %q", i, j, all[i])
			}
		}
		if strings.Contains(all[i], "sk-") || all[i] == "" {
			t.Errorf("tenant %q", all[i])
		}
	}
	if one != oneX || saltA != tenant(bearer("sk-one"), "a") {
		t.Errorf("tenants are not a function of key and salt: %q %q", one, oneX)
	}
	// Without keys the salt alone decides; no salt is the shared tenant.
	open := &Server{}
	r, _ := open.authenticate(httptest.NewRequest("POST", "/", nil))
	if got := tenantOf(r, ""); got != "" {
		t.Errorf("no key, no salt: %q, want the shared tenant", got)
	}
	if a, b := tenantOf(r, "a"), tenantOf(r, "b"); a == "" || a == b || a == saltA {
		t.Errorf("salts a, b: %q %q (a with key one: %q)", a, b, saltA)
	}
}

// One tenant never gets another's cached tokens: the same chat sent by
// another key, another salt, or the same key with a salt computes its
// prompt again; the same tenant reuses it.
func TestTenantsDoNotShareCachedTokens(t *testing.T) {
	ts := start(t, sched.Config{Prefix: prefix.New()}, Config{APIKeys: []string{"sk-one", "sk-two"}})
	system := strings.Repeat("You are a careful assistant who explains how caches keep keys and values. ", 6)
	cached := func(key, salt string) int {
		t.Helper()
		req := map[string]any{"model": modelID, "max_tokens": 3, "temperature": 0,
			"messages": []map[string]string{{"role": "system", "content": system}, {"role": "user", "content": "What is a KV cache?"}}}
		if salt != "" {
			req["cache_salt"] = salt
		}
		b, _ := json.Marshal(req)
		resp, out := ts.do(t, "POST", "/v1/chat/completions", string(b), bearer(key))
		var r chatResponse
		if err := json.Unmarshal(out, &r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, out)
		}
		waitIdle(t, ts)
		return r.Usage.PromptTokensDetails.CachedTokens
	}
	if n := cached("sk-one", ""); n != 0 {
		t.Fatalf("the first request found %d cached tokens", n)
	}
	for _, tc := range []struct {
		key, salt string
		shares    bool
	}{
		{"sk-two", "", false},
		{"sk-one", "s", false},
		{"sk-two", "s", false},
		{"sk-one", "", true},
		{"sk-one", "s", true},
		{"sk-two", "", true},
	} {
		n := cached(tc.key, tc.salt)
		if (n > 0) != tc.shares {
			t.Errorf("key %s, salt %q: %d cached prompt tokens; sharing %v expected", tc.key, tc.salt, n, tc.shares)
		}
	}
}

// Without API keys, cache_salt alone separates tenants.
func TestCacheSaltSeparatesTenants(t *testing.T) {
	ts := start(t, sched.Config{Prefix: prefix.New()}, Config{})
	prompt := strings.Repeat("A long shared document about caches and their keys. ", 8)
	cached := func(salt any) int {
		t.Helper()
		req := map[string]any{"model": modelID, "prompt": prompt, "max_tokens": 2, "temperature": 0}
		if salt != nil {
			req["cache_salt"] = salt
		}
		resp, out := ts.post(t, "/v1/completions", req)
		var r completionResponse
		if err := json.Unmarshal(out, &r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, out)
		}
		waitIdle(t, ts)
		return r.Usage.PromptTokensDetails.CachedTokens
	}
	for i, tc := range []struct {
		salt   any
		shares bool
	}{{nil, false}, {"alice", false}, {"bob", false}, {"alice", true}, {nil, true}, {"", true}} {
		if n := cached(tc.salt); (n > 0) != tc.shares {
			t.Errorf("request %d, salt %v: %d cached tokens; sharing %v expected", i, tc.salt, n, tc.shares)
		}
	}
	if resp, out := ts.post(t, "/v1/completions", map[string]any{"model": modelID, "prompt": "hi", "cache_salt": 7}); resp.StatusCode != 400 || errorBody(t, out)["param"] != "cache_salt" {
		t.Errorf("a numeric cache_salt: %d %s", resp.StatusCode, out)
	}
}
