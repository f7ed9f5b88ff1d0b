package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The access log: one line per request, in logfmt, written when the
// request ends:
//
//	2026-01-02T15:04:05.000Z id=chatcmpl-1f2e... method=POST path=/v1/chat/completions status=200 tenant=key:9a3c41d07be2f0aa
//	  prompt=42 cached=32 completion=16 kv_bytes=59392 recipe=q8 finish=stop ttft_ms=3.2 ms=41.7 remote=127.0.0.1:50412
//
// (one line). Requests that generate nothing have no token fields; an
// error carries its code (error=context_length_exceeded). The id is the
// completion's id, also sent as the X-Request-Id header.

// access is what the log says of one request; handlers fill it in.
type access struct {
	id     string
	start  time.Time
	tenant string
	code   string // the error code of an error response

	gen        bool // a generation ran
	prompt     int
	cached     int
	completion int
	kvBytes    int64
	recipe     string
	finish     string
	ttft       time.Duration
}

type accessCtx struct{}

// accessOf returns the request's access record (a zero one outside the
// server's handlers, so handlers never check).
func accessOf(r *http.Request) *access {
	if a, ok := r.Context().Value(accessCtx{}).(*access); ok {
		return a
	}
	return &access{}
}

// beginAccess starts a request's record and names the request: the
// X-Request-Id header carries its id.
func beginAccess(w http.ResponseWriter, r *http.Request) (*access, *http.Request) {
	a := &access{id: newID(""), start: time.Now()}
	w.Header().Set("X-Request-Id", a.id)
	return a, r.WithContext(context.WithValue(r.Context(), accessCtx{}, a))
}

// accessLog writes the lines; nil writes nothing.
type accessLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *accessLog) write(a *access, r *http.Request, status int) {
	if l == nil || l.w == nil {
		return
	}
	var b strings.Builder
	b.WriteString(a.start.UTC().Format("2006-01-02T15:04:05.000Z"))
	field := func(k, v string) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	field("id", a.id)
	field("method", shown(r.Method))
	field("path", shown(r.URL.Path))
	field("status", strconv.Itoa(status))
	if a.code != "" {
		field("error", shown(a.code))
	}
	if a.tenant != "" {
		field("tenant", a.tenant)
	}
	if a.gen {
		field("prompt", strconv.Itoa(a.prompt))
		field("cached", strconv.Itoa(a.cached))
		field("completion", strconv.Itoa(a.completion))
		field("kv_bytes", strconv.FormatInt(a.kvBytes, 10))
		field("recipe", shown(a.recipe))
		if a.finish != "" {
			field("finish", a.finish)
		}
		if a.ttft > 0 {
			field("ttft_ms", ms(a.ttft))
		}
	}
	field("ms", ms(time.Since(a.start)))
	field("remote", shown(r.RemoteAddr))
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, b.String())
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

// shown writes a client-controlled value on one line of a log or an
// error: as it is when short and plain, else quoted and cut to maxQuoted
// bytes.
func shown(s string) string {
	if len(s) <= maxQuoted && s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f || r == '\uFFFD' }) {
		return s
	}
	return quote(s)
}

// noteGeneration records a finished generation in the access log.
func noteGeneration(a *access, g *generation) {
	a.gen = true
	a.prompt = len(g.j.prompt)
	a.cached = g.final.Cached
	a.completion = g.tokens
	a.kvBytes = g.final.KVBytes
	a.recipe = g.j.req.Recipe.String()
	a.finish = g.finish
	if g.err != nil && a.finish == "" {
		a.finish = "error"
		if errors.Is(g.err, context.Canceled) || errors.Is(g.err, context.DeadlineExceeded) {
			a.finish = "cancelled"
		} else if e := fromSched(g.err); e.Code != nil {
			a.finish = *e.Code
		}
	}
	if !g.clock.first.IsZero() {
		a.ttft = g.clock.first.Sub(g.j.start)
	}
}
