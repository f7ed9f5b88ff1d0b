package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kvgo/kvgo/engine/sched"
)

// probes are request bodies of issue 14's hostile probes and the shapes
// clients send: the fuzz target's seeds and the chaos test's malformed
// and extreme requests.
var probes = []string{
	`{"model":"kvgo-tiny","prompt":"hi","max_tokens":4}`,
	`{"model":"kvgo-tiny","prompt":["hi"],"stream":true,"stop":["\n","##"],"seed":7,"temperature":0.5,"top_p":0.9}`,
	`{"model":"kvgo-tiny","prompt":[1,2,3],"kv":"snapkv(budget=8)+q4","ignore_eos":true,"cache_salt":"t"}`,
	`{"model":"kvgo-tiny","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_completion_tokens":3}`,
	`{"model":"kvgo-tiny","messages":[{"role":"user","content":null}],"stream":true,"stream_options":{"include_usage":true}}`,
	`{"model":"kvgo-tiny","prompt":"hi","max_tokens":9223372036854775807}`,
	`{"model":"kvgo-tiny","prompt":"hi","max_tokens":-9223372036854775808}`,
	`{"model":"kvgo-tiny","prompt":"hi","max_tokens":1e400}`,
	`{"model":"kvgo-tiny","prompt":"hi","max_tokens":1.5}`,
	`{"model":"kvgo-tiny","prompt":"hi","temperature":-0}`,
	`{"model":"kvgo-tiny","prompt":"hi","temperature":1e308,"top_p":1e-320}`,
	`{"model":"kvgo-tiny","prompt":[-1]}`,
	`{"model":"kvgo-tiny","prompt":[9223372036854775807]}`,
	`{"model":"kvgo-tiny","prompt":[[1]]}`,
	`{"model":"kvgo-tiny","prompt":[]}`,
	`{"model":"kvgo-tiny","prompt":["a","b"]}`,
	`{"model":"kvgo-tiny","prompt":""}`,
	`{"model":"kvgo-tiny","prompt":"\u0000\ud800"}`,
	`{"model":"kvgo-tiny","prompt":"hi","stop":["a","b","c","d","e"]}`,
	`{"model":"kvgo-tiny","prompt":"hi","stop":[""]}`,
	`{"model":"kvgo-tiny","prompt":"hi","kv":"snapkv(budget=0)"}`,
	`{"model":"kvgo-tiny","prompt":"hi","kv":"q8)` + strings.Repeat("y", 300) + `"}`,
	`{"model":"kvgo-tiny","prompt":"hi","n":2,"best_of":3,"echo":true,"suffix":"x"}`,
	`{"model":"kvgo-tiny","prompt":"hi","logprobs":true,"presence_penalty":1}`,
	`{"model":"kvgo-tiny","messages":"hi"}`,
	`{"model":"kvgo-tiny","messages":[]}`,
	`{"model":"kvgo-tiny","messages":[{}]}`,
	`{"model":"kvgo-tiny","messages":[{"role":"tool","content":"x"}]}`,
	`{"model":"kvgo-tiny","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`,
	`{"model":"kvgo-tiny","messages":[{"role":"user","content":"hi"}],"tools":[{}],"response_format":{"type":"json_object"}}`,
	`{"model":"kvgo-tiny","messages":[{"role":"user","content":"hi"}],"response_format":"text"}`,
	`{"model":"gpt-4","prompt":"hi"}`,
	`{"model":null,"prompt":null}`,
	`{"model":"kvgo-tiny","prompt":"hi","stream":"yes"}`,
	`{"model":"kvgo-tiny","prompt":"hi","model":"x"}`,
	`{"model":"kvgo-tiny","prompt":"hi",}`,
	`{"model":"kvgo-tiny","prompt":"hi"} trailing`,
	`[1,2,3]`, `"a string"`, `null`, `{}`, ``, ` `, `{`, `}`, `{"a":`, "\xff\xfe", `{"model":"kvgo-tiny","prompt":"` + "\xff" + `"}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	`{"model":"kvgo-tiny","prompt":"hi","x":` + strings.Repeat(`{"a":`, 2000) + `1` + strings.Repeat(`}`, 2000) + `}`,
}

// FuzzRequest sends arbitrary bodies to both generation endpoints of a
// draining server, so everything before generation runs (decoding,
// validation, recipes, templates, tokenization) and nothing generates:
// no body makes the server panic (a 500), every answer is an OpenAI error
// object (or, past validation, 503 shutting_down), and no error is long.
func FuzzRequest(f *testing.F) {
	for _, p := range probes {
		f.Add(p)
	}
	var once sync.Once
	var srv *Server
	f.Fuzz(func(t *testing.T, body string) {
		once.Do(func() {
			e := tiny(t)
			sch, err := sched.New(e, sched.Config{KVBudget: 8 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if srv, err = New(Config{Engine: e, Sched: sch, ModelID: modelID}); err != nil {
				t.Fatal(err)
			}
			srv.Drain()
		})
		for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
			if rec.Code == 500 || rec.Code < 400 {
				t.Fatalf("%s: status %d for %.200q: %.300s", path, rec.Code, body, rec.Body)
			}
			var v struct {
				Error *struct {
					Message string  `json:"message"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.Error == nil || v.Error.Message == "" {
				t.Fatalf("%s: %d body %.300q is not an error object (%v)", path, rec.Code, rec.Body, err)
			}
			if rec.Code != 413 && v.Error.Code == nil {
				t.Fatalf("%s: an error without a code: %s", path, rec.Body)
			}
			if rec.Body.Len() > 2048 {
				t.Fatalf("%s: a %d-byte error for a %d-byte body: %.300s", path, rec.Body.Len(), len(body), rec.Body)
			}
		}
	})
}
