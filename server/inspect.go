package server

import (
	"embed"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"github.com/kvgo/kvgo/engine/sched"
	"github.com/kvgo/kvgo/kv/recipe"
)

// The web page (server/web, embedded: it works with no internet) and the
// two endpoints it reads besides the OpenAI API:
//
//   - GET /v1/kv/recipes: the default recipe, the methods a request's "kv"
//     may name (Config.AllowMethods) with their kinds and parameters, and
//     suggested recipes among them;
//   - GET /v1/kv/inspect: the KV cache of the caller's latest sequence
//     that asked to be inspected (header X-Kvgo-Inspect: 1 on a completion
//     request): sched.Scheduler.Inspect, answered by the scheduler between
//     steps, with each position's token text. The tenant is the caller's
//     (tenantOf: its API key, and ?cache_salt= as the request's
//     cache_salt), so one tenant never sees another's sequence.

//go:embed web
var webFiles embed.FS

// inspectHeader marks a completion request whose cache the inspector shows.
const inspectHeader = "X-Kvgo-Inspect"

// mountWeb adds the page and the two endpoints to the mux.
func (s *Server) mountWeb() {
	sub, _ := fs.Sub(webFiles, "web")
	files := http.FileServerFS(sub)
	// The page and its assets hold nothing secret: they load without a
	// key, and the page sends the key the user types with each call.
	s.mux.Handle("GET /{$}", files)
	s.mux.Handle("GET /web/", http.StripPrefix("/web", files))
	s.mux.Handle("/v1/kv/recipes", s.endpoint("/v1/kv/recipes", http.MethodGet, s.kvRecipes))
	s.mux.Handle("/v1/kv/inspect", s.endpoint("/v1/kv/inspect", http.MethodGet, s.kvInspect))
}

type methodInfo struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Params []string `json:"params"`
}

func (s *Server) kvRecipes(w http.ResponseWriter, _ *http.Request) *apiError {
	var methods []methodInfo
	for _, m := range recipe.Methods() {
		if s.allow != nil && !s.allow[m.Name] {
			continue
		}
		mi := methodInfo{Name: m.Name, Kind: m.Kind.String(), Params: []string{}}
		for _, p := range m.Params {
			mi.Params = append(mi.Params, p.Name+"="+p.Default)
		}
		methods = append(methods, mi)
	}
	suggested := []string{s.def.String()}
	for _, r := range recipe.Suggested() {
		p, e := s.recipe(&r)
		if e != nil || slices.Contains(suggested, p.String()) {
			continue
		}
		suggested = append(suggested, p.String())
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "kv.recipes", "default": s.def.String(), "methods": methods, "suggested": suggested,
		"context_length": s.sch.Context()})
	return nil
}

type inspectResponse struct {
	Object   string          `json:"object"`
	Sequence *sched.Snapshot `json:"sequence"`
	// Text is each position's token text (Sequence.Tokens).
	Text []string `json:"text,omitempty"`
}

func (s *Server) kvInspect(w http.ResponseWriter, r *http.Request) *apiError {
	snap, err := s.sch.Inspect(r.Context(), tenantOf(r, r.URL.Query().Get("cache_salt")))
	if err != nil {
		return fromSched(err)
	}
	out := inspectResponse{Object: "kv.inspect", Sequence: snap}
	if snap != nil {
		out.Text = make([]string, len(snap.Tokens))
		for i, id := range snap.Tokens {
			out.Text[i] = strings.ToValidUTF8(string(s.eng.Tok.Piece(id)), "\uFFFD")
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
