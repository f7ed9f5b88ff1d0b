#!/usr/bin/env bash
# Regenerates docs/RAG.md: how to send chunks, what each repair policy
# does, and the RAG workload's measurements: `kvgo eval rag` on the
# embedded kvgo-tiny model (quality and time) and on a random-weight model
# of qwen2.5-0.5b's shape (time only: its answers mean nothing), and the
# workload served (`kvgo loadtest --rag` against one `kvgo serve`,
# scripts/rag-served.sh). Takes about an hour on 2 cores (most of it the
# 0.5B model's full prefills); run it on an otherwise idle machine, since
# the TTFT and throughput columns are wall-clock times.
#
# OUT (default: a new temporary directory) keeps each part's table;
# PARTS (default "tiny q05 served") says which parts to measure again, so
# a part can be re-measured alone and the page assembled from OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PARTS=${PARTS:-tiny q05 served}
mkdir -p "$OUT"
bin=$OUT/kvgo
go build -o "$bin" ./cmd/kvgo

for part in $PARTS; do
  case $part in
  tiny)
    policies="prefix;naive;epic(k=16);cacheblend(ratio=0.15);cachecraft;cachecraft(alpha=0.5);cachecraft+kivi(bits=4)"
    "$bin" eval rag --questions 40 --kv "$policies" --json "$OUT/tiny.json" --html "$OUT/tiny.html" >"$OUT/tiny.md"
    ;;
  q05)
    # Six retrieved documents of about 512 tokens, a common RAG shape, so
    # that the text every policy computes (the instruction and the
    # question, about 260 tokens under the random model's byte-level
    # tokenizer) is under a tenth of the prompt; every policy of the
    # kvgo-tiny table runs on it. 16 documents of 6 MiB each (F16) need a
    # store larger than the default 64 MiB.
    [ -f "$OUT/q05.gguf" ] || "$bin" gen --shape qwen2.5-0.5b --type q8_0 -o "$OUT/q05.gguf" >/dev/null
    "$bin" eval rag -m "$OUT/q05.gguf" --time-only --docs 16 --doc-tokens 512 --k 6 --chunk-mem 256MiB --questions 4 --warm 6 \
      --kv "prefix;naive;epic(k=16);cacheblend(ratio=0.15);cachecraft;cachecraft(alpha=0.5);cachecraft+kivi(bits=4)" \
      --json "$OUT/q05.json" >"$OUT/q05.md"
    sed -i "s|^$OUT/q05.gguf:|qwen2.5-0.5b shape, random Q8_0 weights:|" "$OUT/q05.md"
    ;;
  served)
    KVGO=$bin OUT=$OUT/served REPS=${REPS:-5} REQUESTS=${REQUESTS:-60} scripts/rag-served.sh >"$OUT/served.md"
    ;;
  *)
    echo "unknown part $part" >&2
    exit 2
    ;;
  esac
done

sed -e "/@TINY@/{r $OUT/tiny.md" -e 'd}' -e "/@Q05@/{r $OUT/q05.md" -e 'd}' -e "/@SERVED@/{r $OUT/served.md" -e 'd}' \
  docs/RAG.md.in >docs/RAG.md
echo "wrote docs/RAG.md (tables and JSON in $OUT)"
