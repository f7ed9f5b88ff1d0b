// Package server is kvgo's OpenAI-compatible HTTP API: /v1/completions and
// /v1/chat/completions (streaming with server-sent events or not),
// /v1/models, /health and Prometheus /metrics. Generation runs on a
// sched.Scheduler, so concurrent requests share forward passes and are
// admitted by the KV-cache bytes their recipe needs; the recipe is chosen
// per request with the extension field "kv".
package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kvgo/kvgo/chat"
	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/engine/sched"
	"github.com/kvgo/kvgo/kv/recipe"
)

// Config configures a Server.
type Config struct {
	Engine *engine.Engine
	Sched  *sched.Scheduler
	// ModelID is the model name clients send and /v1/models lists.
	ModelID string
	// Template formats chat messages (default: chat.FromGGUF of the engine's file).
	Template *chat.Template
	// DefaultRecipe is the KV recipe of requests without "kv" (default f16).
	DefaultRecipe string
	// AllowMethods lists the KV methods a request's "kv" may name; nil or
	// a "*" entry allows every method. The default recipe is always allowed.
	AllowMethods []string
	// MaxBodyBytes bounds a request body (default 4 MiB).
	MaxBodyBytes int64
	// DefaultMaxTokens is max_tokens when a request gives none (default
	// 512), capped by the room left in the context.
	DefaultMaxTokens int
	// Logf logs recovered panics (default: discarded).
	Logf func(format string, args ...any)
	// APIKeys, if any, are the keys a request must send (auth.go).
	APIKeys []string
	// AccessLog receives one line per request (accesslog.go; nil: none).
	AccessLog io.Writer
	// ChunkSep, if set, marks the chunks of a plain prompt (chunks.go).
	ChunkSep string
}

// Server serves the API. Create it with New; Handler is its http.Handler.
type Server struct {
	cfg      Config
	eng      *engine.Engine
	sch      *sched.Scheduler
	tmpl     *chat.Template
	def      *recipe.Recipe
	allow    map[string]bool // nil: every method
	m        *metrics
	created  int64
	draining atomic.Bool
	logf     func(string, ...any)
	mux      *http.ServeMux
	keys     keyring
	alog     *accessLog
	// generating counts the generation requests in flight, which a drain
	// waits for.
	generating atomic.Int64
}

// New builds a server over an engine and its scheduler.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil || cfg.Sched == nil {
		return nil, errors.New("server: an engine and a scheduler are required")
	}
	if cfg.ModelID == "" {
		return nil, errors.New("server: a model id is required")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.DefaultMaxTokens == 0 {
		cfg.DefaultMaxTokens = 512
	}
	s := &Server{cfg: cfg, eng: cfg.Engine, sch: cfg.Sched, tmpl: cfg.Template, logf: cfg.Logf, created: time.Now().Unix(),
		keys: newKeyring(cfg.APIKeys), alog: &accessLog{w: cfg.AccessLog}}
	if len(cfg.APIKeys) > 0 && len(s.keys) == 0 {
		return nil, errors.New("server: every API key is empty")
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	if s.tmpl == nil {
		t, err := chat.FromGGUF(cfg.Engine.File, cfg.Engine.Tok)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.tmpl = t
	}
	def, err := recipe.Parse(cfg.DefaultRecipe)
	if err != nil {
		return nil, fmt.Errorf("server: default KV recipe: %w", err)
	}
	s.def = def
	if len(cfg.AllowMethods) > 0 && !slices.Contains(cfg.AllowMethods, "*") {
		s.allow = map[string]bool{}
		valid := recipe.Names()
		for _, name := range cfg.AllowMethods {
			if !slices.Contains(valid, name) {
				return nil, fmt.Errorf("server: allowed KV method %q is not a method (valid: %s)", name, strings.Join(valid, ", "))
			}
			s.allow[name] = true
		}
	}
	s.m = newMetrics(cfg.Sched)
	s.routes()
	return s, nil
}

// Drain makes the server refuse new generation requests (503) and report
// itself unhealthy, while requests in flight go on; http.Server.Shutdown
// then waits for them.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.sch.Drain()
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.Handle("/v1/completions", s.endpoint("/v1/completions", http.MethodPost, s.completions))
	s.mux.Handle("/v1/chat/completions", s.endpoint("/v1/chat/completions", http.MethodPost, s.chatCompletions))
	s.mux.Handle("/v1/models", s.endpoint("/v1/models", http.MethodGet, s.models))
	s.mux.Handle("/v1/models/{id...}", s.endpoint("/v1/models/{id}", http.MethodGet, s.model))
	s.mux.Handle("/health", s.endpoint("/health", http.MethodGet, s.health))
	metrics := s.m.handler()
	s.mux.Handle("/metrics", s.endpoint("/metrics", http.MethodGet, func(w http.ResponseWriter, r *http.Request) *apiError {
		metrics.ServeHTTP(w, r)
		return nil
	}))
	s.mountWeb() // the page, /v1/kv/recipes and /v1/kv/inspect (inspect.go)
	s.mux.Handle("/", s.endpoint("other", "", func(w http.ResponseWriter, r *http.Request) *apiError {
		return &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: ptr("not_found"), Message: fmt.Sprintf("no endpoint %s %s", shown(r.Method), shown(r.URL.Path))}
	}))
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// endpoint wraps a handler with the API key check, the method check, the
// requests counter, the access log and panic recovery: a panic fails its
// own request with a 500 (or ends its stream), never the server.
func (s *Server) endpoint(name, method string, h func(http.ResponseWriter, *http.Request) *apiError) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		a, r := beginAccess(rec, r)
		fail := func(e *apiError) {
			if e.Code != nil {
				a.code = *e.Code
			}
			writeError(rec, e)
		}
		defer func() { s.alog.write(a, r, rec.status) }()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logf("server: %s %s: panic: %v\n%s", r.Method, r.URL.Path, p, debug.Stack())
				if !rec.written {
					a.code = "panic"
					writeError(rec, &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: fmt.Sprintf("internal error: %v", p)})
				}
			}
			s.m.count(name, rec.status)
		}()
		r, e := s.authenticate(r)
		if e != nil {
			rec.Header().Set("WWW-Authenticate", "Bearer")
			fail(e)
			return
		}
		a.tenant = tenantOf(r, "")
		if method != "" && r.Method != method {
			rec.Header().Set("Allow", method)
			fail(&apiError{Status: http.StatusMethodNotAllowed, Type: typeInvalid, Code: ptr("method_not_allowed"),
				Message: fmt.Sprintf("%s takes %s, not %s", shown(r.URL.Path), method, shown(r.Method))})
			return
		}
		if e := h(rec, r); e != nil {
			fail(e)
		}
	})
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) *apiError {
	st := s.sch.Stats()
	status, code := "ok", http.StatusOK
	if s.draining.Load() {
		status, code = "draining", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{
		"status": status, "model": s.cfg.ModelID,
		"running": st.Running, "queued": st.Queued,
		"kv_bytes_in_use": st.InUse, "kv_budget_bytes": st.Budget,
	})
	return nil
}

func (s *Server) modelObject() modelObject {
	return modelObject{ID: s.cfg.ModelID, Object: "model", Created: s.created, OwnedBy: "kvgo", Context: s.sch.Context()}
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) *apiError {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelObject{s.modelObject()}})
	return nil
}

func (s *Server) model(w http.ResponseWriter, r *http.Request) *apiError {
	if id := r.PathValue("id"); id != s.cfg.ModelID {
		return s.unknownModel(id)
	}
	writeJSON(w, http.StatusOK, s.modelObject())
	return nil
}

func (s *Server) unknownModel(id string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: typeInvalid, Param: ptr("model"), Code: ptr("model_not_found"),
		Message: fmt.Sprintf("the model %s does not exist; this server serves %q", quote(id), s.cfg.ModelID)}
}

// readBody reads a request body of at most MaxBodyBytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v any) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			return decodeError(err)
		}
		return invalid("", "invalid_body", "reading the request body: %v", err)
	}
	if err := decode(body, v); err != nil {
		return decodeError(err)
	}
	return nil
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
