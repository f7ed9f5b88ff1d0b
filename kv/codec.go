package kv

// A Codec decides how one kind of vector (the keys or the values of a
// stream) is stored. Keys and values of a stream may use different codecs
// (KIVI quantizes keys per channel and values per token).
//
// A codec never hands attention a decoded F32 copy of a page: attention
// asks the page for dot products with the query and for weighted sums of
// its vectors, and the page computes them from its own encoding.
type Codec interface {
	// Name identifies the codec in reports ("f16", "q8", "kivi-k2", ...).
	Name() string
	// Residual is how many of a stream's most recent tokens stay in full
	// precision (F32) before they are encoded (KIVI's R; 0 for codecs that
	// encode each token as it arrives).
	Residual() int
	// Group is the number of tokens encoded together into one page (KIVI's
	// G for per-channel keys); 0 means tokens are encoded one at a time and
	// may be appended to a page until it holds PageTokens.
	Group() int
	// NewPage returns an empty page for vectors of d values with room for
	// capacity tokens.
	NewPage(d, capacity int) Page
}

// A Page stores up to its capacity of vectors of one stream in one codec.
type Page interface {
	// Len is the number of vectors stored.
	Len() int
	// Bytes is the memory the page holds, allocated capacity included.
	Bytes() int64
	// Append encodes n vectors (n*d values). Codecs with a Group accept
	// exactly Group vectors into an empty page.
	Append(x []float32, n int)
	// Dot writes q_j·x_i into out[j*Len()+i] for the g query vectors q
	// (g*d values) and every stored vector i. sc is working memory lent
	// for the call (nil: the page allocates what it needs).
	Dot(q []float32, g int, out []float32, sc *PageScratch)
	// AddWeighted adds Σ_i w[j*Len()+i]·x_i into out[j*d:(j+1)*d] for each
	// of the g weight rows, with working memory sc as in Dot.
	AddWeighted(w []float32, g int, out []float32, sc *PageScratch)
	// Decode writes vector i into dst (d values); for tests, re-rotation
	// and re-encoding, never for attention.
	Decode(i int, dst []float32)
	// Delete removes vector i; the others keep their exact stored values.
	// A page that has become much smaller than its allocation may shrink.
	Delete(i int)
}

// PageTokens is the number of tokens of a page for codecs without a Group.
const PageTokens = 32

// PageScratch is working memory that attention lends a page for one Dot or
// AddWeighted call: decoded runs of tokens, a quantized query. Attention
// keeps one per worker and reuses it for every page, because a page's own
// stack buffer of a few KiB would be zeroed on every call (Go zeroes every
// variable): at the page sizes of attention that zeroing was a large part
// of a quantized page's cost (kv/quant BenchmarkAttendHalves, KIVI-4 before
// and after, decided this; figures in docs/PERFORMANCE.md). Its contents
// are undefined on entry.
type PageScratch struct {
	f []float32
	i []int16
}

// Floats returns n floats of scratch (fresh ones on a nil scratch).
func (s *PageScratch) Floats(n int) []float32 {
	if s == nil {
		return make([]float32, n)
	}
	if cap(s.f) < n {
		s.f = make([]float32, n)
	}
	return s.f[:n]
}

// Int16s returns n int16s of scratch (fresh ones on a nil scratch).
func (s *PageScratch) Int16s(n int) []int16 {
	if s == nil {
		return make([]int16, n)
	}
	if cap(s.i) < n {
		s.i = make([]int16, n)
	}
	return s.i[:n]
}
