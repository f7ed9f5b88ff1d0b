#!/usr/bin/env bash
# Runs kvgo and llama.cpp side by side on the same random-weight GGUF files
# of real shapes, 2 threads, one after the other, and leaves raw JSON/text
# in $OUT (default /tmp/kvgo-perf). docs/PERFORMANCE.md records one run.
#
# Needs a llama.cpp build (see ../shared/golden/README.md, "Rebuilding the
# reference"): LLAMA=/path/to/llama.cpp/build/bin. Run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA=${LLAMA:?set LLAMA to llama.cpp build/bin}
OUT=${OUT:-/tmp/kvgo-perf}
MODELS=${MODELS:-$OUT/models}
mkdir -p "$OUT" "$MODELS"
go build -o "$OUT/kvgo" ./cmd/kvgo
K=$OUT/kvgo
for spec in qwen2.5-0.5b:q8_0 qwen2.5-0.5b:q4_k smollm2-135m:f16; do
  shape=${spec%%:*} type=${spec##*:} f=$MODELS/$shape-$type.gguf
  [ -f "$f" ] || "$K" gen --shape "$shape" --type "$type" -o "$f"
  "$K" bench -m "$f" -p 512 -n 128 -d 0 -r 3 -t 2 --json > "$OUT/kvgo-$shape-$type.json"
  "$LLAMA/llama-bench" -m "$f" -p 512 -n 128 -r 3 -t 2 -o json > "$OUT/llama-$shape-$type.json"
done
f=$MODELS/qwen2.5-0.5b-q8_0.gguf
# Decode at depth 8192 with F16 caches on both sides, and SnapKV.
"$K" bench -m "$f" -p 0 -n 16 -d 8192 -r 1 -t 2 --membw --kv "f16;snapkv(budget=0.25)" --json > "$OUT/kvgo-depth8192.json"
"$LLAMA/llama-batched-bench" -m "$f" -c 8448 -b 2048 -ub 512 -npp 8192 -ntg 16 -npl 1 -t 2 > "$OUT/llama-depth8192.txt" 2>&1
# Every codec and SnapKV at depth 8192: issue 4's speed target is decode
# through a compressed cache no slower than through the full f16 one.
# --interleave fills all six caches, then runs each repetition once per
# recipe in turn and reports each recipe's speed relative to f16 in the
# same repetitions (vs_first): the shared VM drifts by several percent over
# the minutes between recipes measured one after the other.
"$K" bench -m "$f" -p 0 -n 64 -d 8192 -r 10 -t 2 --interleave --membw \
  --kv "f16;kivi(bits=4);snapkv(budget=0.25);kivi(bits=2);q8;q4" --json > "$OUT/kvgo-codecs8192.json"
echo "results in $OUT"
