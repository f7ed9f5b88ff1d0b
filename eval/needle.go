package eval

import (
	"strings"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/kv"
	"github.com/kvgo/kvgo/kv/recipe"
)

// span is a run of prompt tokens [lo, hi).
type span struct{ lo, hi int }

// needleSpans finds, for each target, the token spans of its occurrences
// in the prompt ids: the prompt is decoded token by token as `kvgo run`
// would print it, and every occurrence of the target's text maps to the
// tokens that cover it. A target that does not occur gets no spans.
func needleSpans(e *engine.Engine, ids []int, targets []string) [][]span {
	dec := e.Tok.NewStreamDecoder()
	var text strings.Builder
	ends := make([]int, len(ids)) // byte offset after token i
	for i, id := range ids {
		text.WriteString(dec.Next(id))
		ends[i] = text.Len()
	}
	s := text.String()
	tokenAt := func(off int) int { // the token whose text holds byte off
		lo, hi := 0, len(ends)-1
		for lo < hi {
			m := (lo + hi) / 2
			if ends[m] > off {
				hi = m
			} else {
				lo = m + 1
			}
		}
		return lo
	}
	out := make([][]span, len(targets))
	for i, t := range targets {
		if t == "" {
			continue
		}
		for at := 0; ; {
			j := strings.Index(s[at:], t)
			if j < 0 {
				break
			}
			start := at + j
			out[i] = append(out[i], span{tokenAt(start), tokenAt(start+len(t)-1) + 1})
			at = start + 1
		}
	}
	return out
}

// protector is the always-kept window of a recipe's evictor, nil for a
// recipe that keeps every token. An evictor that does not declare one
// (kv.Protector) protects nothing.
func protector(r *recipe.Recipe) (kv.Protector, bool) {
	if r == nil || !r.Evicts() {
		return nil, false
	}
	cfg, err := r.Config()
	if err != nil {
		return nil, false
	}
	p, _ := cfg.Evictor.(kv.Protector)
	return p, true
}

// inWindow reports whether every target has an occurrence wholly inside
// the tokens p keeps by rule of a prompt of n tokens. ok is false when the
// recipe keeps everything or a target is not in the prompt.
func inWindow(p kv.Protector, evicts bool, n int, needles [][]span) (in, ok bool) {
	if !evicts || len(needles) == 0 {
		return false, false
	}
	first, last := 0, 0
	if p != nil {
		first, last = p.Protected(n)
	}
	in = true
	for _, occ := range needles {
		if len(occ) == 0 {
			return false, false
		}
		kept := false
		for _, sp := range occ {
			kept = kept || sp.hi <= first || sp.lo >= n-last
		}
		in = in && kept
	}
	return in, true
}
