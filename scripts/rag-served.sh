#!/usr/bin/env bash
# The RAG workload served (docs/RAG.md, "Served"): one `kvgo serve` on the
# embedded kvgo-tiny with the chunk separator, driven by
# `kvgo loadtest --rag` with every policy in turn, REPS times in the same
# sitting (repetition r uses seed r for every policy, so within a
# repetition all policies answer the same questions, in a rotated order;
# each run has its own
# cache_salt, so no run reuses another's caches). Prints a Markdown table
# on stdout; raw JSON is left in $OUT (default /tmp/kvgo-rag-served).
# Environment: REPS (3), REQUESTS (40 per run), WARM (80), CLIENTS (4),
# PORT (18081), KVGO (a built kvgo; default: build one).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/kvgo-rag-served}
PORT=${PORT:-18081}
REPS=${REPS:-3}
REQUESTS=${REQUESTS:-40}
WARM=${WARM:-80}
CLIENTS=${CLIENTS:-4}
mkdir -p "$OUT"
rm -f "$OUT"/run-*.json
K=${KVGO:-}
if [ -z "$K" ]; then
  go build -o "$OUT/kvgo" ./cmd/kvgo
  K=$OUT/kvgo
fi
"$K" serve --port "$PORT" --chunk-sep ' # # ' --chunk-mem 256MiB --quiet >"$OUT/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done
policies=("full" "prefix+f16" "naive+f16" "epic(k=16)+f16" "cacheblend(ratio=0.15)+f16" "cachecraft+f16" "cachecraft(alpha=0.5)+f16" "cachecraft+kivi(bits=4)")
n=${#policies[@]}
for rep in $(seq "$REPS"); do
  # Each repetition starts at another policy, so no policy always runs
  # first (or after the same neighbour) in a repetition.
  for j in $(seq 0 $((n - 1))); do
    i=$(((j + rep - 1) % n))
    "$K" loadtest --url "http://127.0.0.1:$PORT" --rag --seed "$rep" --kv "${policies[$i]}" -c "$CLIENTS" \
      --requests "$REQUESTS" --warm "$WARM" --duration 30m --json >"$OUT/run-$rep-$i.json"
  done
done
go run ./scripts/rag-served-table "$OUT"/run-*.json
