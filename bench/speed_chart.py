#!/usr/bin/env python3
"""Draws the edgelm / llama.cpp speed ratios of bench/compare-llamacpp.sh reports as one PNG.

  speed_chart.py chart.png LABEL=report.md [LABEL=report.md ...]

Each report's first table (threads, test, llama.cpp t/s, ..., edgelm t/s, ..., ratio) gives one
group of bars: the ratio per (test, threads), with the 1.25x generation and 1.0x prompt targets
drawn across. matplotlib: Debian's python3-matplotlib (scripts/install-deps.sh)."""
import sys


def read_report(path):
    """(threads, test) -> (llama t/s, edgelm t/s) from the report's first table."""
    rows = {}
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0].isdigit() and cells[1][:2] in ("pp", "tg"):
            rows[(int(cells[0]), cells[1])] = (float(cells[2]), float(cells[4]))
        elif rows and not line.strip():
            break
    if not rows:
        sys.exit(f"error: {path} has no speed table; give a report written by bench/compare-llamacpp.sh")
    return rows


def main():
    if len(sys.argv) < 3 or any("=" not in a for a in sys.argv[2:]):
        sys.exit("usage: speed_chart.py chart.png LABEL=report.md [LABEL=report.md ...]")
    png = sys.argv[1]
    reports = [(a.split("=", 1)[0], read_report(a.split("=", 1)[1])) for a in sys.argv[2:]]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for _, r in reports for k in r}, key=lambda k: (k[1][:2] != "tg", k[1], k[0]))
    width = 0.8 / len(reports)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, (label, r) in enumerate(reports):
        xs = [j + (i - (len(reports) - 1) / 2) * width for j in range(len(keys))]
        ratios = [r[k][1] / r[k][0] if k in r else 0 for k in keys]
        bars = ax.bar(xs, ratios, width, label=label)
        for b, v in zip(bars, ratios):
            ax.text(b.get_x() + b.get_width() / 2, v + 0.03, f"{v:.2f}", ha="center", fontsize=7)
    for j, k in enumerate(keys):
        target = 1.25 if k[1].startswith("tg") else 1.0
        ax.plot([j - 0.45, j + 0.45], [target, target], color="black", lw=1, ls="--")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{t}\n{n} thread{'s' if n > 1 else ''}" for n, t in keys])
    ax.set_ylabel("edgelm t/s ÷ llama.cpp t/s")
    ax.set_title("SmolLM2-135M, edgelm vs llama.cpp, same run (dashed: the target)")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main()
