package kv

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// A Repair is a chunk-repair policy (kind RepairMethod): how a request
// reuses the keys and values of the chunks of its prompt (retrieved
// documents, each cached once) and which of their tokens it computes again
// so that they attend to the context they now follow. The engine splices a
// reused chunk at its new positions (Cache.Splice, keys re-rotated) and
// recomputes the chosen tokens through every layer (Cache.Begin overwrites
// held positions); the tokens after the last chunk are always computed.
// The policies are small: a choice of tokens from what the engine hands
// them, like an evictor's scores.
type Repair interface {
	// Name identifies the policy in reports.
	Name() string
	// Reuse says what the request may take from earlier requests.
	Reuse() Reuse
	// CheckLayer is the layer at which the engine compares each reused
	// token's freshly computed value with the spliced one and hands the
	// deviation to Recompute (ChunkUse.Deviation); -1 when the policy does
	// not choose by deviation. Layers before it and it are computed for
	// every token of the reused chunks first (CacheBlend).
	CheckLayer() int
	// Recompute returns the indexes (0..Tokens-1, increasing) of the
	// tokens of a reused chunk to compute again.
	Recompute(u *ChunkUse) []int
}

// Reuse is what a request may take from earlier requests.
type Reuse int

// Kinds of reuse.
const (
	// ReuseNone computes every token: full prefill.
	ReuseNone Reuse = iota
	// ReusePrefix takes the longest cached prefix of the prompt (the
	// prefix cache) and computes the rest.
	ReusePrefix
	// ReuseChunks takes the chunk caches of the prompt's chunks.
	ReuseChunks
)

// ChunkHash identifies a chunk by its tokens (TokenHash).
type ChunkHash [16]byte

// String is the hash in hex.
func (h ChunkHash) String() string { return hex.EncodeToString(h[:]) }

// TokenHash is the hash of a chunk's token ids: the first 16 bytes of the
// SHA-256 of the ids as little-endian int32s.
func TokenHash(tokens []int) ChunkHash {
	d := sha256.New()
	var b [4]byte
	for _, t := range tokens {
		binary.LittleEndian.PutUint32(b[:], uint32(int32(t)))
		d.Write(b[:])
	}
	var h ChunkHash
	copy(h[:], d.Sum(nil))
	return h
}

// ChunkUse is what a Repair sees of one reused chunk of a request.
type ChunkUse struct {
	// Tokens is the chunk's length |C|.
	Tokens int
	// Before are the chunks before it in this prompt, in order.
	Before []ChunkHash
	// Stats is what was recorded when the chunk's cache was computed (nil
	// when nothing was).
	Stats *ChunkStats
	// Deviation holds, for a policy with a CheckLayer, each token's
	// squared difference between its fresh and its spliced value at that
	// layer, summed over KV heads and channels.
	Deviation []float32
}

// ChunkStats is what Cache-Craft needs of a chunk, recorded while the
// chunk was computed in a real request, after the chunks it then
// followed. Attention is averaged over query heads; "inter" and "intra"
// sum attention probabilities over query tokens of the chunk and key
// tokens of the other chunk (or of itself, causally).
type ChunkStats struct {
	// Before are the chunks that preceded it, in order, and Inter, per
	// entry of Before, the chunk's attention to that chunk (summed over
	// both chunks' tokens, averaged over layers and heads).
	Before []ChunkHash
	Inter  []float32
	// A and B are, per layer, Σ_j inter(C, C_j)/(|C|·|C_j|) over the
	// preceding chunks and intra(C)/|C|², Cache-Craft's a_l and b_l.
	A, B []float32
	// Context is, per token of the chunk, its attention to everything
	// before the chunk except the sequence's first token (the attention
	// sink, there in every prompt), averaged over layers and heads.
	Context []float32
}

// Bytes is the memory the stats hold.
func (s *ChunkStats) Bytes() int64 {
	if s == nil {
		return 0
	}
	return int64(len(s.Before)*16 + 4*(len(s.Inter)+len(s.A)+len(s.B)+len(s.Context)))
}
