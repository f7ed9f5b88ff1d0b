#!/usr/bin/env python3
"""Markdown tables for docs/RETRIEVAL.md (scripts/retrieval.sh).

  retrieval-report.py accuracy REPORT.json   # kvgo eval's report (kvgo-eval/1)
  retrieval-report.py bench BENCH.json...    # kvgo bench --json, in order

Accuracies are mean scores (a multi-answer case counts its fraction) with the
95% Wilson interval of eval/report.Wilson and the case count.
"""
import json
import math
import sys

Z = 1.959963984540054


def wilson(x, n):
    if n <= 0:
        return 0.0, 1.0
    p = min(max(x / n, 0.0), 1.0)
    z2 = Z * Z
    d = 1 + z2 / n
    c = (p + z2 / (2 * n)) / d
    h = Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def cell(scores):
    n = len(scores)
    if n == 0:
        return "-"
    x = sum(scores)
    lo, hi = wilson(x, n)
    return f"{100 * x / n:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}] {x:.3g}/{n}"


def short(name):
    return name.replace("|", "\\|")


def accuracy(path):
    rep = json.load(open(path))
    order = [r["name"] for r in rep["recipes"]]
    cases = rep["cases"]
    lengths = sorted({c["context_tokens"] for c in cases})
    def ratio(name, n):
        # Mean over the length's cases of the cache at the end of the case
        # against the full f16 cache for the same tokens.
        xs = [c["kv_bytes"] / c["kv_bytes_full_f16"] for c in cases
              if c["recipe"] == name and c["context_tokens"] == n and c["kv_bytes_full_f16"]]
        return sum(xs) / len(xs) if xs else float("nan")
    groups = [("all tasks", None), ("passkey", {"passkey"}), ("multikey", {"multikey"}),
              ("kv, vt, multivalue", {"kv", "vt", "multivalue"})]
    for n in lengths:
        print(f"### {n} tokens")
        print()
        print("| recipe | " + " | ".join(g for g, _ in groups) + " | KV/full |")
        print("|---" * (len(groups) + 2) + "|")
        for name in order:
            row = []
            for _, tasks in groups:
                s = [c["score"] for c in cases if c["recipe"] == name and c["context_tokens"] == n
                     and (tasks is None or c["task"] in tasks)]
                row.append(cell(s))
            print(f"| `{short(name)}` | " + " | ".join(row) + f" | {ratio(name, n):.3f} |")
        print()
    # Needle-depth strata, passkey and multikey (the tasks kvgo-tiny
    # answers), both lengths.
    bins = [0, 0.25, 0.5, 0.75, 1]
    print("### By needle depth (passkey and multikey, both lengths)")
    print()
    print("| recipe | " + " | ".join(f"depth {b:g}" for b in bins) + " |")
    print("|---" * (len(bins) + 1) + "|")
    for name in order:
        row = []
        for b in bins:
            s = [c["score"] for c in cases if c["recipe"] == name and c["task"] in ("passkey", "multikey")
                 and c.get("depth") is not None and min(bins, key=lambda x: abs(x - c["depth"])) == b]
            row.append(cell(s))
        print(f"| `{short(name)}` | " + " | ".join(row) + " |")
    print()


def bench(*paths):
    res = []
    for path in paths:
        r = json.load(open(path))
        res += r.get("results", []) if isinstance(r, dict) else r
    print("| depth | recipe | decode t/s | vs f16 | KV/full |")
    print("|---|---|---|---|---|")
    for r in res:
        if not r["test"].startswith("tg"):
            continue
        vs = f"{r['vs_first']:.2f} ± {r.get('vs_first_stddev', 0):.2f}" if r.get("vs_first") else "1"
        name = r["recipe"].split("(")[0] if r["recipe"].startswith("f16") else r["recipe"]
        print(f"| {r['depth']} | `{short(name)}` | {r['tokens_per_second']:.2f} ± {r['stddev']:.2f} | {vs} | {r['kv_ratio']:.3f} |")
    print()


if __name__ == "__main__":
    {"accuracy": accuracy, "bench": bench}[sys.argv[1]](*sys.argv[2:])
