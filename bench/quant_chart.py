#!/usr/bin/env python3
"""Turns bench/quant-table.sh's results.jsonl into a Markdown table and a size-vs-perplexity PNG.

  quant_chart.py results.jsonl table.md chart.png CTX CHUNKS [TITLE]
matplotlib: Debian's python3-matplotlib (scripts/install-deps.sh); without it only the table
is written."""
import json
import sys


def main():
    src, md, png, ctx, chunks = sys.argv[1:6]
    title = sys.argv[6] if len(sys.argv) > 6 else "SmolLM2-135M requantized from Q4_1"
    rows = [json.loads(l) for l in open(src) if l.strip()]
    lines = [f"| type | file size | perplexity (essays.txt, -c {ctx}, {chunks} chunks) | prompt tok/s | generation tok/s | peak RSS |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['type']} | {r['bytes'] / 2**20:.1f} MiB | {r['ppl']:.3f} ± {r['ppl_err']:.3f} | "
                     f"{r['pp_ts']:.1f} | {r['tg_ts']:.1f} | {r['peak_rss_kb'] / 1024:.0f} MiB |")
    open(md, "w").write("\n".join(lines) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart (apt install python3-matplotlib)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        im = "imatrix" in r["type"]
        ax.errorbar(r["bytes"] / 2**20, r["ppl"], yerr=r["ppl_err"], fmt="s" if im else "o",
                    color="tab:orange" if im else "tab:blue", capsize=2, ms=5)
        ax.annotate(r["type"], (r["bytes"] / 2**20, r["ppl"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("file size (MiB, log scale)")
    ax.set_ylabel(f"perplexity on essays.txt (-c {ctx})")
    ax.set_title(f"{title}: size vs perplexity")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


if __name__ == "__main__":
    main()
