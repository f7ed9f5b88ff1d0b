package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/kvgo/kvgo/chat"
	"github.com/kvgo/kvgo/engine/sched"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/kvgo/kvgo/sample"
	"github.com/kvgo/kvgo/tokenizer"
)

// job is one validated generation request, either endpoint.
type job struct {
	chat    bool
	id      string
	created int64
	prompt  []int
	req     sched.Request
	stops   []string
	stream  bool
	// trimLead drops the whitespace a fallback-format reply starts with
	// ("Assistant: Hello" -> "Hello", "Assistant:\nHello" -> "Hello").
	trimLead bool
	start    time.Time
	salt     string // cache_salt (tenantOf)
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) *apiError {
	start := time.Now()
	var req completionRequest
	if e := s.readBody(w, r, &req); e != nil {
		return e
	}
	if e := s.checkCommon(&req.commonRequest); e != nil {
		return e
	}
	switch {
	case req.Echo:
		return invalid("echo", "unsupported", "echo is not supported")
	case req.BestOf != nil && *req.BestOf != 1:
		return invalid("best_of", "unsupported", "best_of must be 1")
	case req.Suffix != nil && *req.Suffix != "":
		return invalid("suffix", "unsupported", "suffix is not supported")
	}
	text, ids, e := parsePrompt(req.Prompt)
	if e != nil {
		return e
	}
	cp, chunked, e := s.completionChunks(req.Chunks, text, ids)
	if e != nil {
		return e
	}
	if chunked {
		ids = cp.Tokens
	} else if ids == nil {
		if e := s.checkLength("prompt", text); e != nil {
			return e
		}
		if ids, e = s.encode("prompt", text, true, false); e != nil {
			return e
		}
	} else if e := s.checkTokens("prompt", ids); e != nil {
		return e
	}
	j, e := s.newJob(&req.commonRequest, "prompt", req.MaxTokens, ids, nil)
	if e != nil {
		return e
	}
	j.req.Chunks = cp.Chunks
	j.id, j.start = "cmpl-"+accessOf(r).id, start
	return s.run(w, r, j)
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) *apiError {
	start := time.Now()
	var req chatRequest
	if e := s.readBody(w, r, &req); e != nil {
		return e
	}
	if e := s.checkCommon(&req.commonRequest); e != nil {
		return e
	}
	if e := req.chatExtras.check(); e != nil {
		return e
	}
	if len(req.Messages) == 0 {
		return invalid("messages", "missing_field", "messages is required and must not be empty")
	}
	msgs := make([]chat.Message, len(req.Messages))
	for i, m := range req.Messages {
		role, e := m.role(i)
		if e != nil {
			return e
		}
		text, e := messageText(i, m.Content)
		if e != nil {
			return e
		}
		msgs[i] = chat.Message{Role: role, Content: text}
	}
	text, err := s.tmpl.Render(msgs, true)
	if err != nil {
		return invalid("messages", "invalid_messages", "%v", err)
	}
	if e := s.checkLength("messages", text); e != nil {
		return e
	}
	addBOS := s.tmpl.BOS() == "" || !strings.HasPrefix(text, s.tmpl.BOS())
	ids, e := s.encode("messages", text, addBOS, s.tmpl.ParseSpecial())
	if e != nil {
		return e
	}
	cp, chunked := s.chatChunks(req.KV, req.Messages, msgs)
	if chunked {
		ids = cp.Tokens
	}
	maxTokens := req.MaxCompletionTokens
	if maxTokens == nil {
		maxTokens = req.MaxTokens
	}
	j, e := s.newJob(&req.commonRequest, "messages", maxTokens, ids, s.tmpl.Stops())
	if e != nil {
		return e
	}
	j.req.Chunks = cp.Chunks
	j.chat, j.id, j.start = true, "chatcmpl-"+accessOf(r).id, start
	j.trimLead = s.tmpl.Name() == chat.Fallback
	return s.run(w, r, j)
}

func (s *Server) encode(param, text string, addSpecial, parseSpecial bool) ([]int, *apiError) {
	ids := s.eng.Tok.Encode(text, addSpecial, parseSpecial)
	if len(ids) == 0 {
		return nil, invalid(param, "invalid_value", "%s is empty", param)
	}
	return ids, nil
}

// checkCommon validates what both endpoints share, before any work.
func (s *Server) checkCommon(c *commonRequest) *apiError {
	switch {
	case c.Model == "":
		return invalid("model", "missing_field", "model is required")
	case c.Model != s.cfg.ModelID:
		return s.unknownModel(c.Model)
	case c.N != nil && *c.N != 1:
		return invalid("n", "unsupported", "n must be 1: this server returns one choice per request")
	case c.Temperature != nil && (math.IsNaN(*c.Temperature) || *c.Temperature < 0 || *c.Temperature > 2):
		return invalid("temperature", "invalid_value", "temperature %v is outside [0, 2]", *c.Temperature)
	case c.TopP != nil && (math.IsNaN(*c.TopP) || *c.TopP <= 0 || *c.TopP > 1):
		return invalid("top_p", "invalid_value", "top_p %v is outside (0, 1]", *c.TopP)
	case c.PresencePenalty != nil && *c.PresencePenalty != 0:
		return invalid("presence_penalty", "unsupported", "presence_penalty is not supported (use 0)")
	case c.FrequencyPenalty != nil && *c.FrequencyPenalty != 0:
		return invalid("frequency_penalty", "unsupported", "frequency_penalty is not supported (use 0)")
	case !isNull(c.Logprobs) && strings.TrimSpace(string(c.Logprobs)) != "false":
		return invalid("logprobs", "unsupported", "logprobs are not supported")
	}
	return nil
}

// newJob turns validated fields into a scheduler request.
func (s *Server) newJob(c *commonRequest, promptParam string, maxTokens *int, ids []int, extraStops []string) (*job, *apiError) {
	ctx := s.sch.Context()
	if len(ids) >= ctx {
		return nil, invalid(promptParam, "context_length_exceeded",
			"this model's maximum context length is %d tokens; the prompt has %d tokens", ctx, len(ids))
	}
	n, e := s.maxTokens("max_tokens", maxTokens, len(ids))
	if e != nil {
		return nil, e
	}
	stops, e := parseStops(c.Stop)
	if e != nil {
		return nil, e
	}
	rcp, e := s.recipe(c.KV)
	if e != nil {
		return nil, e
	}
	p := sample.Params{Temperature: 1, TopP: 1}
	if c.Temperature != nil {
		p.Temperature = float32(*c.Temperature)
	}
	if c.TopP != nil {
		p.TopP = float32(*c.TopP)
	}
	if c.Seed != nil {
		p.Seed = uint64(*c.Seed)
	} else {
		p.Seed = rand.Uint64()
	}
	if err := p.Validate(); err != nil {
		return nil, invalid("", "invalid_value", "%v", err)
	}
	var salt string
	if c.CacheSalt != nil {
		salt = *c.CacheSalt
	}
	return &job{
		salt:    salt,
		created: time.Now().Unix(),
		prompt:  ids,
		req:     sched.Request{Prompt: ids, MaxTokens: n, Sampling: p, Recipe: rcp, StopAtEOG: !c.IgnoreEOS},
		stops:   append(stops, extraStops...),
		stream:  c.Stream,
	}, nil
}

// recipe resolves the request's "kv" field against the allow-list.
func (s *Server) recipe(kv *string) (*recipe.Recipe, *apiError) {
	if kv == nil || strings.TrimSpace(*kv) == "" {
		return s.def, nil
	}
	r, err := recipe.Parse(*kv)
	if err != nil {
		msg := err.Error()
		if !strings.Contains(msg, "valid:") {
			msg += fmt.Sprintf(" (valid methods: %s)", strings.Join(s.allowedNames(), ", "))
		}
		return nil, invalid("kv", "invalid_kv_recipe", "%s; see `kvgo kv list`", msg)
	}
	if s.allow != nil && r.String() != s.def.String() {
		for _, t := range r.Terms {
			if !s.allow[t.Method.Name] {
				return nil, invalid("kv", "kv_method_not_allowed", "KV method %q is not allowed on this server (allowed: %s)",
					t.Method.Name, strings.Join(s.allowedNames(), ", "))
			}
		}
	}
	return r, nil
}

func (s *Server) allowedNames() []string {
	if s.allow == nil {
		return recipe.Names()
	}
	var out []string
	for _, n := range recipe.Names() {
		if s.allow[n] {
			out = append(out, n)
		}
	}
	return out
}

// run submits the job and answers, streaming or not.
func (s *Server) run(w http.ResponseWriter, r *http.Request, j *job) *apiError {
	a := accessOf(r)
	j.req.Tenant = tenantOf(r, j.salt)
	j.req.Inspect = r.Header.Get(inspectHeader) != "" // the page's inspector (inspect.go)
	a.tenant = j.req.Tenant
	s.generating.Add(1) // before Submit, so a drain that starts after it waits
	defer s.generating.Add(-1)
	h, err := s.sch.Submit(r.Context(), j.req)
	if err != nil {
		return fromSched(err)
	}
	s.m.promptTokens.Add(float64(len(j.prompt)))
	g := newGeneration(s, j, h)
	defer func() {
		s.m.duration.Observe(time.Since(j.start).Seconds())
		noteGeneration(a, g)
	}()
	if !j.stream {
		return s.respond(w, r, g)
	}
	s.streamSSE(w, r, g)
	return nil
}

// generation turns a sequence's tokens into text: UTF-8-safe decoding,
// stop strings, usage.
type generation struct {
	s      *Server
	j      *job
	h      *sched.Handle
	dec    *tokenizer.StreamDecoder
	stop   stopper
	clock  tokenClock
	tokens int  // tokens consumed (completion_tokens)
	lead   bool // still trimming the reply's leading space
	done   bool
	finish string
	final  sched.Event
	err    error
}

func newGeneration(s *Server, j *job, h *sched.Handle) *generation {
	// The decoder is fed the prompt, so the first generated token keeps
	// its leading space ("Hello" + " world").
	g := &generation{s: s, j: j, h: h, dec: s.eng.ContinuationDecoder(j.prompt), stop: stopper{stops: j.stops}, lead: j.trimLead}
	g.clock = tokenClock{m: s.m, start: j.start}
	return g
}

// next waits for the next piece of text. It returns done when the
// sequence ended; g.finish and g.final (or g.err) then say how.
func (g *generation) next(ctx context.Context) (text string, done bool) {
	for {
		if g.done {
			return "", true
		}
		e, err := g.h.Recv(ctx)
		if err != nil {
			g.h.Cancel()
			g.err, g.done = err, true
			return "", true
		}
		if e.Done {
			g.done, g.final = true, e
			g.s.m.cachedTokens.Add(float64(e.Cached))
			switch e.Finish {
			case sched.FinishStop, sched.FinishLength:
				if g.finish == "" {
					g.finish = string(e.Finish)
				}
			case sched.FinishCancelled:
				g.err = context.Canceled
			default:
				if g.finish == "" { // a stop string already ended it otherwise
					g.err = e.Err
				}
			}
			tail := g.dec.Flush()
			out, hit := g.stop.push(tail)
			if !hit {
				out += g.stop.flush()
			} else if g.finish == "" {
				g.finish = "stop"
			}
			return g.trim(out), true
		}
		if g.finish != "" {
			continue // past a stop string: drain until the final event
		}
		g.tokens++
		g.clock.tick()
		out, hit := g.stop.push(g.dec.Next(e.Token))
		if hit {
			g.finish = "stop"
			g.h.Stop()
		}
		if out = g.trim(out); out != "" {
			return out, false
		}
	}
}

func (g *generation) trim(s string) string {
	if g.lead && s != "" {
		s = strings.TrimLeft(s, " \t\r\n")
		if s != "" {
			g.lead = false
		}
	}
	return s
}

func (g *generation) usage() *usage {
	return &usage{
		PromptTokens: len(g.j.prompt), CompletionTokens: g.tokens, TotalTokens: len(g.j.prompt) + g.tokens,
		PromptTokensDetails: promptTokensDetails{CachedTokens: g.final.Cached},
	}
}

// respond answers a non-streaming request once the sequence is done.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, g *generation) *apiError {
	var b strings.Builder
	for {
		text, done := g.next(r.Context())
		b.WriteString(text)
		if done {
			break
		}
	}
	if g.err != nil {
		if errors.Is(g.err, context.Canceled) || errors.Is(g.err, context.DeadlineExceeded) {
			return &apiError{Status: 499, Type: typeInvalid, Code: ptr("cancelled"), Message: "the request was cancelled"}
		}
		return fromSched(g.err)
	}
	finish := g.finish
	text := b.String()
	if g.j.chat {
		writeJSON(w, http.StatusOK, chatResponse{
			ID: g.j.id, Object: "chat.completion", Created: g.j.created, Model: s.cfg.ModelID,
			Choices: []chatChoice{{Message: &chatMessageOut{Role: "assistant", Content: &text}, FinishReason: &finish}},
			Usage:   g.usage(), KV: g.j.req.Recipe.String(),
		})
		return nil
	}
	writeJSON(w, http.StatusOK, completionResponse{
		ID: g.j.id, Object: "text_completion", Created: g.j.created, Model: s.cfg.ModelID,
		Choices: []completionChoice{{Text: text, FinishReason: &finish}},
		Usage:   g.usage(), KV: g.j.req.Recipe.String(),
	})
	return nil
}

// streamSSE sends the generation as server-sent events: one chunk per
// piece of text, a chunk with the finish reason, a usage chunk (always:
// clients that did not ask for it ignore a chunk without choices), then
// "data: [DONE]". A failure after the stream started is sent as an error
// event, and the stream still ends with [DONE].
func (s *Server) streamSSE(w http.ResponseWriter, r *http.Request, g *generation) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Connection", "keep-alive")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			g.h.Cancel()
			return false
		}
		if err := rc.Flush(); err != nil {
			g.h.Cancel()
			return false
		}
		return true
	}
	j := g.j
	chunk := func(text string, finish *string, role string) any {
		if j.chat {
			d := &chatMessageOut{Role: role}
			if finish == nil {
				d.Content = &text
			}
			return chatResponse{ID: j.id, Object: "chat.completion.chunk", Created: j.created, Model: s.cfg.ModelID,
				Choices: []chatChoice{{Delta: d, FinishReason: finish}}}
		}
		return completionResponse{ID: j.id, Object: "text_completion", Created: j.created, Model: s.cfg.ModelID,
			Choices: []completionChoice{{Text: text, FinishReason: finish}}}
	}
	if j.chat && !send(chunk("", nil, "assistant")) {
		return
	}
	for {
		text, done := g.next(r.Context())
		if text != "" && !send(chunk(text, nil, "")) {
			return
		}
		if done {
			break
		}
	}
	if g.err != nil {
		if r.Context().Err() != nil {
			return // the client is gone
		}
		e := fromSched(g.err)
		send(map[string]any{"error": e})
		fmt.Fprint(w, "data: [DONE]\n\n")
		rc.Flush()
		return
	}
	finish := g.finish
	if !send(chunk("", &finish, "")) {
		return
	}
	u := g.usage()
	if j.chat {
		send(chatResponse{ID: j.id, Object: "chat.completion.chunk", Created: j.created, Model: s.cfg.ModelID, Choices: []chatChoice{}, Usage: u, KV: j.req.Recipe.String()})
	} else {
		send(completionResponse{ID: j.id, Object: "text_completion", Created: j.created, Model: s.cfg.ModelID, Choices: []completionChoice{}, Usage: u, KV: j.req.Recipe.String()})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	rc.Flush()
}

// stopper finds stop strings in streamed text. It holds back the end of
// the text while it could still be the start of a stop string, so no
// part of a stop string is ever sent.
type stopper struct {
	stops   []string
	pending string
}

// push adds text and returns what is safe to send; hit reports a stop
// string, before which the returned text ends.
func (s *stopper) push(text string) (out string, hit bool) {
	if len(s.stops) == 0 {
		return text, false
	}
	s.pending += text
	first := -1
	for _, st := range s.stops {
		if i := strings.Index(s.pending, st); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		out = s.pending[:first]
		s.pending = ""
		return out, true
	}
	hold := 0
	for _, st := range s.stops {
		for k := min(len(st)-1, len(s.pending)); k > hold; k-- {
			if strings.HasSuffix(s.pending, st[:k]) {
				hold = k
				break
			}
		}
	}
	out = s.pending[:len(s.pending)-hold]
	s.pending = s.pending[len(s.pending)-hold:]
	return out, false
}

// flush returns the held-back text at the end of generation.
func (s *stopper) flush() string {
	out := s.pending
	s.pending = ""
	return out
}
