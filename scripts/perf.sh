#!/usr/bin/env bash
# Regenerates docs/PERFORMANCE.md: kvgo beside llama.cpp on the same
# random-weight GGUF files of real shapes (F16 from `kvgo gen`, every other
# type from llama.cpp's llama-quantize), 2 threads, both engines back to
# back in each repetition so that every ratio is paired. Sections (run all,
# or some with SECTIONS=long,batched; the page keeps the others' last
# tables, each dated):
#   machine    CPU, SIMD flags, builds, memory bandwidth
#   weights    pp512/tg64, qwen2.5-0.5b and llama-3.2-1b, F16 Q8_0 Q4_K_M Q4_0
#   quants     pp512/tg64 for Q4_1 Q5_1 IQ4_NL (qwen), Q2_K Q3_K_M IQ4_XS (llama-3.2-1b)
#   long       prefill of 8192 tokens, decode at depth 8192, the decode bound
#   batched    4, 8 and 16 sequences decoding together
#   codecs     every KV codec at depth 8192, interleaved
#   retrieval  quest(budget=2048) against f16 at depth 8192 (DEEP=1: and 32768)
#   serving    kvgo loadtest per recipe on the embedded model
# A full run takes about 35 minutes on 2 cores; run it on an idle machine.
#
# Needs a llama.cpp build at the goldens' commit (../shared/golden/README.md,
# "Rebuilding the reference"): LLAMA=/path/to/llama.cpp/build/bin, and
# LLAMA_COMMIT to name it on the page. Raw outputs stay in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA=${LLAMA:?set LLAMA to llama.cpp build/bin}
OUT=${OUT:-/tmp/kvgo-perf}
mkdir -p "$OUT"
go build -o "$OUT/kvgo" ./cmd/kvgo
deep=()
[ "${DEEP:-0}" = 1 ] && deep=(-deep)
go run ./scripts/perf -kvgo "$OUT/kvgo" -llama "$LLAMA" -llama-commit "${LLAMA_COMMIT:-unknown}" \
  -out "$OUT" -models "${MODELS:-$OUT/models}" -reps "${REPS:-2}" -long-reps "${LONG_REPS:-1}" \
  ${SECTIONS:+-sections "$SECTIONS"} "${deep[@]}"
echo "docs/PERFORMANCE.md written; raw outputs in $OUT"
