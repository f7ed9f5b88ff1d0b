// Package kernel holds the numeric kernels of the forward pass (matrix
// products for every weight type, normalization, softmax, RoPE, SiLU, the
// inner loops of attention) and the worker pool that runs them on several
// cores.
//
// # Two paths
//
// On amd64 with AVX2, FMA and F16C the hot loops run in Go assembly (the
// *_amd64.s files, hand-written, sharing asm_amd64.h); everywhere else, and
// when the environment variable KVGO_GENERIC=1 is set at start-up or the
// build tag kvgo_generic is given, pure-Go versions run instead. The choice
// is made once, at package initialization (see dispatch.go), and never
// changes. The pure-Go versions are the reference the assembly is tested
// against; they in turn match package quant, ggml's slow reference, bit for
// bit. CI runs the tests on both paths.
//
// # Matrix products
//
// Matrix.MatMul converts the activations once per call to the partner type
// of the weights, as ggml does (Q8_0 for Q8_0/Q4_0/Q5_0/IQ4_NL, Q8_1 for
// Q4_1/Q5_1, Q8_K for the K-quants and IQ4_XS, F16 or BF16 precision for
// F16 and BF16 weights), byte for byte what quant.QuantizeActivation
// produces (ggml's x86 rounding). Every weight type has its own kernels
// (Q4_1/Q5_1 in qdot_q1_amd64.s, Q2_K/Q3_K in qdot_k23_amd64.s, IQ4 in
// iq4_amd64.s). It then cuts the weight rows
// into tiles that stay in cache while every token of the batch is
// multiplied with them: one token per pass for decode, four (eight for the
// legacy quants) per pass for prefill, so each weight block is unpacked
// once for several tokens and each tile is read from memory once per call.
// Integer block sums are exact; only the float32 summation order differs
// from the reference.
//
// # KV-cache pages
//
// Attention over quantized pages (package kv/quant) uses two families.
// DequantBlocks decodes runs of per-token blocks (q8, q4, KIVI values) for
// the grouped F32 kernels (DotsGroupTo, WeightedSumHeads; f16 pages use
// DotsF16Group and WeightedSumHeadsF16, which take three heads per pass
// over the values). DotsPlanar scores
// queries against 2- and 4-bit codes in the planar layout (PackPlanar)
// without decoding them: the query, with the page's per-channel scales
// folded in, is rounded to int16 (QuantizeScaledI16Heads) and multiplied
// with the widened codes by VPMADDWD, four heads per unpacked row.
//
// # Threads
//
// A Pool keeps its workers for its whole life and hands out row chunks
// through an atomic counter; Run takes a Job (an interface, so the decode
// loop allocates nothing) and MatMul reuses jobs stored in the Pool.
package kernel
