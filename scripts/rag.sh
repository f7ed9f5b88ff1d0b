#!/usr/bin/env bash
# Regenerates docs/RAG.md: how to send chunks, what each repair policy
# does, and the RAG workload's measurements (kvgo eval rag) on the
# embedded kvgo-tiny model (quality and time) and on a random-weight model
# of qwen2.5-0.5b's shape (time only: its answers mean nothing). Takes
# about 30 minutes on 2 cores (most of it the 0.5B model's full prefills); run it on an otherwise idle machine, since
# the TTFT columns are wall-clock times.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
bin=$tmp/kvgo
go build -o "$bin" ./cmd/kvgo

policies="prefix;naive;epic(k=16);cacheblend(ratio=0.15);cachecraft;cachecraft(alpha=0.5);cachecraft+kivi(bits=4)"
"$bin" eval rag --questions 40 --kv "$policies" --json "$tmp/tiny.json" >"$tmp/tiny.md"
"$bin" gen --shape qwen2.5-0.5b --type q8_0 -o "$tmp/q05.gguf" >/dev/null
"$bin" eval rag -m "$tmp/q05.gguf" --time-only --docs 6 --doc-tokens 128 --questions 4 --warm 4 \
  --kv "naive;epic(k=16);cacheblend(ratio=0.15);cachecraft;cachecraft(alpha=0.5)" --json "$tmp/q05.json" >"$tmp/q05.md"

sed -e "/@TINY@/{r $tmp/tiny.md" -e 'd}' -e "/@Q05@/{r $tmp/q05.md" -e 'd}' docs/RAG.md.in >docs/RAG.md
echo "wrote docs/RAG.md (JSON in $tmp)"
