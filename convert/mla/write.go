package mla

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/gguf"
	"github.com/kvgo/kvgo/kv"
	kvquant "github.com/kvgo/kvgo/kv/quant"
	"github.com/kvgo/kvgo/model"
	"github.com/kvgo/kvgo/quant"
)

// Informational keys of converted files (the runtime reads none of them;
// `kvgo info` shows them).
const (
	KeySourceArch    = "kvgo.mla.source_architecture"
	KeySourceKVHeads = "kvgo.mla.source_kv_heads"
	KeySourceHeadDim = "kvgo.mla.source_head_dim"
	KeyFreqFold      = "kvgo.mla.freqfold"
	KeyCalibTokens   = "kvgo.mla.calibration_tokens"
	KeyBKV           = "kvgo.mla.bkv_ratios"
	KeyLowRankK      = "kvgo.lowrank.key_rank"
	KeyLowRankV      = "kvgo.lowrank.value_rank"
)

// outType is the type the rewritten matrices are stored in.
func outType(src *engine.Engine, name string) (gguf.TensorType, error) {
	switch name {
	case "f32":
		return gguf.TypeF32, nil
	case "f16":
		return gguf.TypeF16, nil
	case "same", "":
		t, ok := src.File.Tensor("blk.0.attn_q.weight")
		if !ok {
			return 0, fmt.Errorf("the source has no blk.0.attn_q.weight")
		}
		if !quant.Supported(t.Type) {
			return 0, fmt.Errorf("the source's attn_q type %s cannot be written; use --type f16", t.Type)
		}
		return t.Type, nil
	}
	return 0, fmt.Errorf("invalid --type %q (valid: f32, f16, same)", name)
}

// encode stores a rows×cols float64 matrix as typ, or as F16 when its rows
// do not fill typ's blocks.
func encode(x mat.Matrix, typ gguf.TensorType) (gguf.TensorType, []uint64, []byte, error) {
	rows, cols := x.Dims()
	if cols%typ.BlockElems() != 0 {
		typ = gguf.TypeF16
	}
	rb, err := quant.RowBytes(typ, cols)
	if err != nil {
		return 0, nil, nil, err
	}
	data := make([]byte, rows*rb)
	row := make([]float32, cols)
	for r := 0; r < rows; r++ {
		for c := range row {
			row[c] = float32(x.At(r, c))
		}
		if err := quant.Quantize(typ, row, data[r*rb:(r+1)*rb]); err != nil {
			return 0, nil, nil, err
		}
	}
	return typ, []uint64{uint64(cols), uint64(rows)}, data, nil
}

func f32Bytes(x []float64) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v)))
	}
	return b
}

// copyMetadata copies the source's metadata into b: architecture keys
// renamed from the source's prefix to arch, the ones in skip (suffixes
// after the prefix) left out, everything else as it is.
func copyMetadata(b *gguf.Builder, src *engine.Engine, arch, name string, skip map[string]bool) {
	old := src.Model.Arch + "."
	b.Set("general.architecture", arch)
	for _, kv := range src.File.Metadata {
		switch {
		case kv.Key == "general.architecture":
		case kv.Key == "general.name":
			b.Set("general.name", name)
		case strings.HasPrefix(kv.Key, old):
			if !skip[kv.Key[len(old):]] {
				b.Set(arch+"."+kv.Key[len(old):], kv.Value)
			}
		default:
			b.Set(kv.Key, kv.Value)
		}
	}
	if _, ok := src.File.Lookup("general.name"); !ok {
		b.Set("general.name", name)
	}
}

// writeLatent assembles the deepseek2 file: the source's tensors except
// its attention projections and RoPE factors, copied byte for byte, with
// each layer's attn_q, attn_kv_a_mqa and attn_kv_b (and biases) in place of
// attn_q, attn_k and attn_v.
func writeLatent(src *engine.Engine, g geometry, lat []latentLayer, freq []int, opt Options, res Result) (*gguf.Builder, error) {
	typ, err := outType(src, opt.Type)
	if err != nil {
		return nil, err
	}
	c := src.Model.Config
	r, dR := opt.Rank, opt.RopeDims
	const arch = "deepseek2"
	var b gguf.Builder
	copyMetadata(&b, src, arch, name(src, r, dR), map[string]bool{
		"attention.head_count_kv": true, "attention.key_length": true, "attention.value_length": true,
		"rope.dimension_count": true,
	})
	a := arch + "."
	// head_count_kv = head_count, as llama.cpp's deepseek2 files have it
	// (it sizes attn_q by it); kvgo's cache has one latent head.
	b.Set(a+"attention.head_count_kv", uint32(c.Heads))
	b.Set(a+"attention.key_length", uint32(g.d+dR))
	b.Set(a+"attention.value_length", uint32(g.d))
	b.Set(a+"attention.kv_lora_rank", uint32(r))
	b.Set(a+"rope.dimension_count", uint32(dR))
	b.Set(a+"leading_dense_block_count", uint32(c.Layers))
	b.Set(model.KeyMLAKVANorm, false)
	b.Set(model.KeyMLABias, c.QKVBias)
	b.Set(KeySourceArch, c.Arch)
	b.Set(KeySourceKVHeads, uint32(c.KVHeads))
	b.Set(KeySourceHeadDim, uint32(c.HeadDim))
	b.Set(KeyFreqFold, uint32(res.FreqFold))
	b.Set(KeyCalibTokens, uint32(res.CalibTokens))
	ratios := make([]float32, len(lat))
	for i, l := range lat {
		ratios[i] = float32(l.ratio)
	}
	b.Set(KeyBKV, ratios)

	addMatrix := func(name string, x mat.Matrix) error {
		t, shape, data, err := encode(x, typ)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b.AddTensor(name, t, shape, data)
		return nil
	}
	for i := range src.File.Tensors {
		t := &src.File.Tensors[i]
		var layer int
		var rest string
		if n, _ := fmt.Sscanf(t.Name, "blk.%d.%s", &layer, &rest); n == 2 {
			switch rest {
			case "attn_q.weight":
				p := fmt.Sprintf("blk.%d.", layer)
				l := lat[layer]
				if err := addMatrix(p+"attn_q.weight", l.q); err != nil {
					return nil, err
				}
				if l.qb != nil {
					b.AddTensor(p+"attn_q.bias", gguf.TypeF32, []uint64{uint64(len(l.qb))}, f32Bytes(l.qb))
				}
				if err := addMatrix(p+"attn_kv_a_mqa.weight", l.kva); err != nil {
					return nil, err
				}
				if l.kvab != nil {
					b.AddTensor(p+"attn_kv_a_mqa.bias", gguf.TypeF32, []uint64{uint64(len(l.kvab))}, f32Bytes(l.kvab))
				}
				if err := addMatrix(p+"attn_kv_b.weight", l.kvb); err != nil {
					return nil, err
				}
				continue
			case "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight", "attn_v.bias":
				continue
			}
		}
		if t.Name == "rope_freqs.weight" {
			continue
		}
		b.AddTensor(t.Name, t.Type, t.Shape, src.File.TensorData(t))
	}
	if f, err := ropeFactors(src, g, freq, dR); err != nil {
		return nil, err
	} else if f != nil {
		b.AddTensor("rope_freqs.weight", gguf.TypeF32, []uint64{uint64(len(f))}, f32Bytes(f))
	}
	return &b, nil
}

// ropeFactors are the divisors that give the rope key's pair p the source
// frequency freq[p] under the deepseek2 formula base^(-2p/d_R) (llama3's
// rope_freqs mechanism, with the source's own factors folded in), or nil
// when every pair already has it (TransMLA's every-collapse-th frequency
// with the source base is exactly that formula).
func ropeFactors(src *engine.Engine, g geometry, freq []int, dR int) ([]float64, error) {
	c := src.Model.Config
	var srcF []float32
	if t, ok := src.File.Tensor("rope_freqs.weight"); ok {
		srcF = make([]float32, g.d/2)
		if err := quant.Dequantize(t.Type, src.File.TensorData(t), srcF); err != nil {
			return nil, fmt.Errorf("rope_freqs.weight: %w", err)
		}
	}
	out := make([]float64, dR/2)
	same := true
	for p, i := range freq {
		theta := math.Pow(c.RopeBase, -2*float64(i)/float64(g.d))
		if srcF != nil {
			theta /= float64(srcF[i])
		}
		out[p] = math.Pow(c.RopeBase, -2*float64(p)/float64(dR)) / theta
		same = same && math.Abs(out[p]-1) < 1e-6
	}
	if same {
		return nil, nil
	}
	return out, nil
}

// newCache is an F32 cache for a conversion's own forward passes.
func newCache(m *model.Model, n int) (*kv.Cache, error) {
	return kv.New(m.CacheShape(), kv.Config{K: kvquant.F32{}, V: kvquant.F32{}, RoPE: m.Rotary()}, n)
}

// calibrate runs the calibration tokens through the source in samples and
// returns per layer the uncentered covariance Σ [k; v]·[k; v]ᵀ of the
// pre-RoPE keys and values (biases included).
func calibrate(src *engine.Engine, toks []int, prog Progress) ([]*mat.SymDense, error) {
	m := src.Model
	D := m.KVHeads * m.HeadDim
	covs := make([]*mat.SymDense, m.Config.Layers)
	for i := range covs {
		covs[i] = mat.NewSymDense(2*D, nil)
	}
	st := m.NewState(src.Pool, sampleLen, sampleLen)
	y := mat.NewDense(sampleLen, 2*D, nil)
	st.Tap = func(layer, n int, _, k, v []float32) {
		yn := y.Slice(0, n, 0, 2*D).(*mat.Dense)
		for i := 0; i < n; i++ {
			for j := 0; j < D; j++ {
				yn.Set(i, j, float64(k[i*D+j]))
				yn.Set(i, D+j, float64(v[i*D+j]))
			}
		}
		covs[layer].SymRankK(covs[layer], 1, yn.T())
	}
	for _, s := range samples(src, toks) {
		cache, err := newCache(m, sampleLen)
		if err != nil {
			return nil, err
		}
		if _, err := st.Forward(cache, s, 0); err != nil {
			return nil, fmt.Errorf("calibration: %w", err)
		}
		if prog != nil {
			prog.Add(float64(len(s)), "calibrating")
		}
	}
	return covs, nil
}
