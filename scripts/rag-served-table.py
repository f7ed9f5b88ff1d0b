#!/usr/bin/env python3
"""Prints the Markdown table of docs/RAG.md's "Served" section from
`kvgo loadtest --rag --json` reports (scripts/rag-served.sh): per policy,
throughput (requests/s and prompt tokens/s, medians over repetitions), the
per-repetition ratio of requests/s to prefix caching's (median, range, and
in how many repetitions it was above 1: runs are seconds long on a shared
machine, so a burst of load shows as an outlier, hence medians), TTFT percentiles
(medians over repetitions), the share of prompt tokens cached, and the
accuracy pooled over repetitions with its 95% Wilson interval."""
import json
import math
import statistics
import sys
from collections import defaultdict


def wilson(x, n, z=1.959964):
    if n == 0:
        return 0.0, 1.0
    p = x / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


runs = defaultdict(dict)  # recipe -> seed -> report
order = []
for path in sys.argv[1:]:
    with open(path) as f:
        r = json.load(f)
    if r["recipe"] not in order:
        order.append(r["recipe"])
    runs[r["recipe"]][r["rag"]["seed"]] = r
first = runs[order[0]][min(runs[order[0]])]
rag = first["rag"]
seeds = sorted(runs[order[0]])
print(f"{first['model']} served by one `kvgo serve` on loopback: {rag['docs']} documents of {rag['doc_tokens']:.0f} tokens, "
      f"{rag['k']} per question, Zipf s={rag['zipf']:.2f}; {first['clients']} streaming clients, "
      f"{first['ok'] + first['failed']} measured questions per run after {rag['warm']} warm-up ones, "
      f"{len(seeds)} repetitions with every policy in turn (seeds {', '.join(map(str, seeds))}); "
      f"{first['generated_tokens'] // max(first['ok'], 1)} generated tokens per answer.\n")
print("| policy | requests/s | prompt tok/s | requests/s vs prefix+f16 (paired median, range) | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | cached prompt tokens | accuracy (n, 95% CI) | failed |")
print("|---|---|---|---|---|---|---|---|---|---|")
base = "prefix+f16"
for rec in order:
    rs = [runs[rec][s] for s in seeds if s in runs[rec]]
    rps = statistics.median(r["requests_per_second"] for r in rs)
    pps = statistics.median(r["prompt_tokens_per_second"] for r in rs)
    ratios = [runs[rec][s]["requests_per_second"] / runs[base][s]["requests_per_second"]
              for s in seeds if s in runs[rec] and s in runs.get(base, {})]
    ratio = "-"
    if ratios and rec != base:
        above = sum(x > 1 for x in ratios)
        ratio = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}; above 1 in {above}/{len(ratios)})"
    med = lambda k: statistics.median(r[k] for r in rs)
    prompt = sum(r["prompt_tokens"] for r in rs)
    cached = sum(r["cached_tokens"] for r in rs)
    x = sum(r["rag"]["correct"] for r in rs)
    n = sum(r["rag"]["cases"] for r in rs)
    lo, hi = wilson(x, n)
    failed = sum(r["failed"] + r["rag"]["warm_failed"] for r in rs)
    print(f"| {rec} | {rps:.2f} | {pps:.0f} | {ratio} | {med('ttft_p50_ms'):.1f} | {med('ttft_p90_ms'):.1f} | "
          f"{med('ttft_p99_ms'):.1f} | {100 * cached / max(prompt, 1):.1f}% | {x / max(n, 1):.2f} ({x}/{n}, {lo:.2f}-{hi:.2f}) | {failed} |")
