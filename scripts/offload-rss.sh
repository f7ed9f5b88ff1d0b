#!/bin/sh
# Measures the cold tier (kv/offload, --kv-offload) for docs/RETRIEVAL.md:
# the peak RSS of `kvgo run` at depth ~32700 on the random smollm2-135m
# shape (its context raised to 32768 with kvgo gen --context: random
# weights have no trained length) with quest(budget=2048,dense=0), the
# cache in memory against the cache in a cold tier, each in a process of
# its own, started side by side so that both see the same machine; the
# generated tokens must be identical. Peak RSS is the kernel's (GNU time's
# maximum resident set size: VmHWM), weights mapped from the file included.
#
#   scripts/offload-rss.sh            # WORK=/tmp/kvgo-offload, HOT=64MiB, N=32, BYTES=32700
#
# BYTES sets the prompt's size (BYTES=8100: depth ~8100, a few minutes
# instead of an hour), and KVGO a binary built elsewhere (another commit's,
# to compare) instead of building this checkout's.
set -eu
work=${WORK:-/tmp/kvgo-offload}
hot=${HOT:-64MiB}
n=${N:-32}
bytes=${BYTES:-32700}
recipe='quest(budget=2048,dense=0)'
mkdir -p "$work/cold"
if [ -n "${KVGO:-}" ]; then
  cp "$KVGO" "$work/kvgo"
else
  go build -o "$work/kvgo" ./cmd/kvgo
fi
[ -f "$work/smol32k.gguf" ] || "$work/kvgo" gen --shape smollm2-135m --type q8_0 --context 32768 -o "$work/smol32k.gguf"
# 32700 bytes of random words: the random model's byte-level vocabulary
# makes them about 32700 tokens, leaving room for n generated ones (at
# most 40000 words: up to about 240000 bytes).
awk 'BEGIN { srand(3); n = split("the river stone light quiet number garden seven market window paper north silver open sleep winter blue road friend music", w, " ")
  for (i = 0; i < 40000; i++) printf "%s ", w[int(rand() * n) + 1] }' | head -c "$bytes" > "$work/prompt.txt"
run() {
  /usr/bin/time -f 'peak RSS %M KiB, %e s' "$work/kvgo" run -m "$work/smol32k.gguf" -f "$work/prompt.txt" \
    -n "$n" --temp 0 --ignore-eos --kv "$recipe" "$@"
}
run > "$work/mem.out" 2> "$work/mem.err" &
a=$!
run --kv-offload "$work/cold" --kv-hot "$hot" > "$work/cold.out" 2> "$work/cold.err" &
b=$!
wait $a $b
echo "in memory:"; cat "$work/mem.err"
echo "cold tier:"; cat "$work/cold.err"
if cmp -s "$work/mem.out" "$work/cold.out"; then echo "tokens: identical"; else echo "tokens: DIFFER"; exit 1; fi
left=$(ls -A "$work/cold" | wc -l)
echo "files left in the cold tier's directory: $left"
