package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/kvgo/kvgo/gguf"
)

// identityChunk is the unit of tensor data hashed on its own (so that the
// chunks of one large tensor are hashed in parallel). It is part of the
// identity's definition: changing it changes every identity.
const identityChunk = 1 << 20

// Identity is a digest of everything in the model file that determines
// the KV the model computes for a token sequence: every metadata entry
// (architecture, hyper-parameters such as head counts, RoPE base and
// scaling, norm epsilon, and the rest of the header too), every tensor's
// name, type and shape, and every byte of tensor data. Two engines that
// loaded the same file have the same identity; files that differ in any
// weight have different ones. It is 32 hex digits (128 bits of SHA-256).
//
// The prefix store (kv/reuse/prefix) keys caches by it, so a cache
// computed by one model is never handed to another.
//
// All tensor data is hashed, not a sample: two checkpoints of one
// architecture (a model trained further, a fine-tune, an edit of a few
// rows) have identical headers and differ in places a sample can miss,
// and a cache of one would silently corrupt the other's output (the
// embedded kvgo-tiny and the next run of its training are such a pair).
// The data is hashed in 1 MiB chunks on every core. BenchmarkIdentity, on
// a file of qwen2.5-0.5b's shape written by `kvgo gen`, decided that
// hashing all of it is affordable (figures in docs/PERFORMANCE.md): it
// costs about what `kvgo run` takes to load the same file and generate a
// few tokens, once per server start, and the scheduler pays it only when
// it has a prefix cache. Identity does not cache its result: compute it
// once per engine.
//
// The identity names the file's content, not the code that runs it: the
// KV also depends on kvgo's kernels, so it identifies caches within one
// process, which is all the prefix store needs.
func (e *Engine) Identity() string {
	return fileIdentity(e.File)
}

func fileIdentity(f *gguf.File) string {
	h := sha256.New()
	w := identityWriter{h: h}
	w.str("kvgo model identity v1")
	w.u64(uint64(len(f.Metadata)))
	for _, kv := range f.Metadata {
		w.str(kv.Key)
		w.value(kv.Value)
	}
	w.u64(uint64(len(f.Tensors)))
	type chunk struct {
		data []byte
		sum  [sha256.Size]byte
	}
	var chunks []chunk
	first := make([]int, len(f.Tensors)+1) // tensor i's chunks: chunks[first[i]:first[i+1]]
	for i := range f.Tensors {
		first[i] = len(chunks)
		d := f.TensorData(&f.Tensors[i])
		for len(d) > 0 {
			n := min(len(d), identityChunk)
			chunks = append(chunks, chunk{data: d[:n]})
			d = d[n:]
		}
	}
	first[len(f.Tensors)] = len(chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(chunks), 1)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(chunks)); i = next.Add(1) - 1 {
				chunks[i].sum = sha256.Sum256(chunks[i].data)
			}
		})
	}
	wg.Wait()
	for i := range f.Tensors {
		t := &f.Tensors[i]
		w.str(t.Name)
		w.u64(uint64(t.Type))
		w.u64(uint64(len(t.Shape)))
		for _, d := range t.Shape {
			w.u64(d)
		}
		w.u64(t.Size)
		for _, c := range chunks[first[i]:first[i+1]] {
			h.Write(c.sum[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// identityWriter encodes metadata unambiguously: every variable-length
// item is preceded by its length, every value by its type.
type identityWriter struct {
	h   hash.Hash
	buf [8]byte
}

func (w *identityWriter) u64(x uint64) {
	binary.LittleEndian.PutUint64(w.buf[:], x)
	w.h.Write(w.buf[:])
}

func (w *identityWriter) str(s string) {
	w.u64(uint64(len(s)))
	w.h.Write([]byte(s))
}

func (w *identityWriter) value(v gguf.Value) {
	w.u64(uint64(v.Type))
	w.u64(uint64(v.Elem))
	switch d := v.Data.(type) {
	case string:
		w.str(d)
	case []string:
		w.u64(uint64(len(d)))
		for _, s := range d {
			w.str(s)
		}
	case []gguf.Value:
		w.u64(uint64(len(d)))
		for _, e := range d {
			w.value(e)
		}
	default:
		// Fixed-size scalars and slices of them (bool included).
		w.u64(uint64(v.Len()))
		if err := binary.Write(w.h, binary.LittleEndian, d); err != nil {
			panic(fmt.Sprintf("engine: identity of a %T metadata value: %v", d, err))
		}
	}
}
