package server

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kvgo/kvgo/chat"
	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/engine/sched"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
	"github.com/prometheus/client_golang/prometheus"
)

// Chunks in requests (RAG documents whose caches are reused, issue 12):
//
//   - chat: every "text" part of a message whose content is an array of
//     parts is a chunk (RAG clients send retrieved documents as separate
//     parts); a string content is not;
//   - completions: "chunks", an array of strings placed in order before
//     "prompt" (text or token ids);
//   - a plain prompt: the server's chunk separator (--chunk-sep, LMCache's
//     " # # "), when set, splits it: the text before the first and after
//     the last separator is always computed, the pieces between are chunks.
//
// Each part is tokenized alone (engine.EncodeParts: the boundary rule), so
// a chunk has the same tokens in every request. A recipe with a repair
// policy that reuses chunk caches ("kv": "cachecraft+kivi(bits=4)") then
// reuses them; any other recipe computes the same tokens as usual.

// chunkMark stands for a chunk in a rendered chat template: the template
// places each part where its content goes, and the rendered text is cut
// at the marks. U+001F (unit separator) does not occur in a template.
func chunkMark(i int) string { return fmt.Sprintf("\x1fkvgo-chunk-%d\x1f", i) }

// completionChunks builds a completion request's prompt with its chunks:
// the "chunks" strings then the prompt (text, or token ids appended as
// they are), or the prompt text split at the server's separator. ok is
// false when the request has no chunks.
func (s *Server) completionChunks(chunks []string, text string, ids []int) (p engine.Prompt, ok bool, e *apiError) {
	var parts []engine.Part
	if len(chunks) > 0 || (ids == nil && s.cfg.ChunkSep != "") {
		if ids != nil {
			e = s.checkTokens("prompt", ids)
		} else {
			e = s.checkLength("prompt", text)
		}
		if e != nil {
			return p, false, e
		}
	}
	switch {
	case len(chunks) > 0:
		for i, c := range chunks {
			if e := s.checkLength(fmt.Sprintf("chunks[%d]", i), c); e != nil {
				return p, false, e
			}
			parts = append(parts, engine.Part{Text: c, Chunk: true})
		}
		if ids == nil {
			parts = append(parts, engine.Part{Text: text})
		}
	case ids == nil && s.cfg.ChunkSep != "" && strings.Contains(text, s.cfg.ChunkSep):
		parts = engine.SplitChunks(text, s.cfg.ChunkSep)
	default:
		return p, false, nil
	}
	p = s.eng.EncodeParts(parts, true, false)
	p.Tokens = append(p.Tokens, ids...)
	if len(p.Tokens) == 0 {
		return p, false, invalid("prompt", "invalid_value", "prompt is empty")
	}
	return p, true, nil
}

// chatChunks renders a conversation whose messages' array contents are
// chunks, for a recipe whose repair policy reuses chunk caches (any other
// recipe joins the parts as before): each part is replaced by a mark, the
// template renders, and the rendered text is cut at the marks into the
// text the template wrote and the parts. When the template does not keep
// every mark exactly once (it rewrote the content) the conversation is
// rendered without chunks.
func (s *Server) chatChunks(kvField *string, raw []chatMessage, msgs []chat.Message) (p engine.Prompt, ok bool) {
	if r, e := s.recipe(kvField); e != nil || !reusesChunks(r) {
		return p, false
	}
	marked := make([]chat.Message, len(msgs))
	copy(marked, msgs)
	var texts []string
	for i, m := range raw {
		var parts []contentPart
		if isNull(m.Content) || json.Unmarshal(m.Content, &parts) != nil {
			continue
		}
		var b strings.Builder
		for _, part := range parts {
			if part.Text == nil {
				return p, false
			}
			b.WriteString(chunkMark(len(texts)))
			texts = append(texts, *part.Text)
		}
		marked[i].Content = b.String()
	}
	if len(texts) == 0 {
		return p, false
	}
	out, err := s.tmpl.Render(marked, true)
	if err != nil {
		return p, false
	}
	var parts []engine.Part
	rest := out
	for i, t := range texts {
		mark := chunkMark(i)
		before, after, found := strings.Cut(rest, mark)
		if !found || strings.Contains(after, mark) {
			return p, false
		}
		parts = append(parts, engine.Part{Text: before}, engine.Part{Text: t, Chunk: true})
		rest = after
	}
	if strings.Contains(rest, "\x1fkvgo-chunk-") {
		return p, false
	}
	parts = append(parts, engine.Part{Text: rest})
	addBOS := s.tmpl.BOS() == "" || !strings.HasPrefix(out, s.tmpl.BOS())
	return s.eng.EncodeParts(parts, addBOS, s.tmpl.ParseSpecial()), true
}

// reusesChunks says whether a recipe's repair policy reuses chunk caches.
func reusesChunks(r *recipe.Recipe) bool {
	p, err := r.Repair()
	return err == nil && p != nil && p.Reuse() == kv.ReuseChunks
}

// chunkCollector exports the chunk store's and the scheduler's chunk
// counters at each scrape.
type chunkCollector struct{ s *sched.Scheduler }

var (
	descChunkLookups = prometheus.NewDesc("kvgo_chunk_lookups_total", "Chunk-cache lookups by tier and result (hit, miss, error: unreachable or timed out, corrupt: failed its checks and dropped).", []string{"tier", "result"}, nil)
	descChunkBytes   = prometheus.NewDesc("kvgo_chunk_store_bytes", "Bytes of chunk caches held per tier (redis: bytes this server wrote).", []string{"tier"}, nil)
	descChunkEntries = prometheus.NewDesc("kvgo_chunk_store_entries", "Chunk caches held in RAM.", nil, nil)
	descChunkWrites  = prometheus.NewDesc("kvgo_chunk_writes_total", "Chunk caches written per tier, by result (ok, dropped: too many writes in flight or a failed write).", []string{"tier", "result"}, nil)
	descChunkEvicted = prometheus.NewDesc("kvgo_chunk_evictions_total", "Chunk caches evicted from RAM to keep its budget (--chunk-mem).", nil, nil)
	descChunkTokens  = prometheus.NewDesc("kvgo_chunk_tokens_total", "Prompt tokens of chunked prefills: reused (from chunk caches, not computed), recomputed (of reused chunks), computed (all computed).", []string{"kind"}, nil)
	descChunkStored  = prometheus.NewDesc("kvgo_chunk_stored_total", "Chunks computed and stored.", nil, nil)
	descChunkFalls   = prometheus.NewDesc("kvgo_chunk_fallbacks_total", "Chunked prefills that failed and ran as whole prefills.", nil, nil)
)

func (c chunkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descChunkLookups, descChunkBytes, descChunkEntries, descChunkWrites, descChunkEvicted, descChunkTokens, descChunkStored, descChunkFalls} {
		ch <- d
	}
}

func (c chunkCollector) Collect(ch chan<- prometheus.Metric) {
	store := c.s.ChunkStore()
	if store == nil {
		return
	}
	cnt := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, t := range store.Stats() {
		cnt(descChunkLookups, float64(t.Hits), t.Tier, "hit")
		cnt(descChunkLookups, float64(t.Misses), t.Tier, "miss")
		if t.Tier != "ram" {
			cnt(descChunkLookups, float64(t.Errors), t.Tier, "error")
			cnt(descChunkLookups, float64(t.Corrupt), t.Tier, "corrupt")
			cnt(descChunkWrites, float64(t.Puts), t.Tier, "ok")
			cnt(descChunkWrites, float64(t.Dropped), t.Tier, "dropped")
		} else {
			ch <- prometheus.MustNewConstMetric(descChunkEntries, prometheus.GaugeValue, float64(t.Entries))
			cnt(descChunkEvicted, float64(t.Evictions))
		}
		ch <- prometheus.MustNewConstMetric(descChunkBytes, prometheus.GaugeValue, float64(t.Bytes), t.Tier)
	}
	st := c.s.ChunkStats()
	cnt(descChunkTokens, float64(st.Reused), "reused")
	cnt(descChunkTokens, float64(st.Recomputed), "recomputed")
	cnt(descChunkTokens, float64(st.Computed), "computed")
	cnt(descChunkStored, float64(st.Stored))
	cnt(descChunkFalls, float64(st.Fallbacks))
}
