#!/usr/bin/env bash
# Serving under load: one fresh `kvgo serve` per recipe (embedded kvgo-tiny,
# a 4 MiB KV budget so that the recipe decides how many sequences fit, the
# prefix cache off so every request prefills), driven by `kvgo loadtest`
# with 32 streaming clients for 15 s. docs/PERFORMANCE.md ("Serving")
# records one run; raw JSON is left in $OUT (default /tmp/kvgo-loadtest).
# Run it on an idle machine: server and clients share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/kvgo-loadtest}
PORT=${PORT:-18080}
mkdir -p "$OUT"
go build -o "$OUT/kvgo" ./cmd/kvgo
K=$OUT/kvgo
for r in "f16" "q8" "q4" "kivi(bits=4,residual=32)" "snapkv(budget=64)+q4" "streaming(budget=64)+q4" "h2o(budget=64)+q8"; do
  "$K" serve --port "$PORT" --kv "$r" --kv-mem 4MiB --prefix-cache=false --quiet > "$OUT/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/health" > /dev/null 2>&1 && break
    sleep 0.1
  done
  name=$(echo "$r" | tr -c 'a-z0-9=.\n' '_')
  "$K" loadtest --url "http://127.0.0.1:$PORT" -c 32 --duration 15s --requests 100000 \
    --prompt-tokens 300 --max-tokens 100 --json > "$OUT/$name.json"
  kill "$pid"
  wait "$pid" || true
done
echo "results in $OUT"
