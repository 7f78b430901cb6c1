#!/usr/bin/env python3
"""What distillation buys: a pruned student trained three ways on the same tokens.

The teacher (SmolLM2-135M-Instruct by default) loses its --prune least important blocks
(`edgelm distill --prune-layers`); the student is then
  * left untrained,
  * trained on the cross-entropy alone (`--kd-alpha 1`), and
  * trained on the distillation loss (`--kd-alpha A --kd-temperature T`),
each from the same pruned weights, on the same text in the same order for the same number of
updates. Every model is then quantized to Q8_0 (the teacher too) and measured with edgelm's own
tools: perplexity on held-out text (`edgelm perplexity`) and decode speed at 1 thread
(`edgelm bench -p 0 -n 64 -t 1`).

Corpus: the English fortune-cookie files of Debian's `fortunes` package (BSD licence; installed by
`scripts/install-deps.sh --oracle`), every 10th fortune held out for validation.

    python3 bench/distill.py [--teacher smollm2] [--prune 12] [--train-kb 160] [--epochs 1]

Prints a Markdown table; --out FILE also writes it.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORTUNES = "/usr/share/games/fortunes"


def corpus(train_kb, val_kb):
    files = sorted(f for f in glob.glob(os.path.join(FORTUNES, "*"))
                   if os.path.isfile(f) and not f.endswith((".dat", ".u8")) and not os.path.islink(f))
    if not files:
        sys.exit(f"no fortune files in {FORTUNES}: run scripts/install-deps.sh --oracle (Debian's fortunes package)")
    items = []
    for f in files:
        text = open(f, encoding="utf-8", errors="replace").read()
        items += [t.strip() for t in re.split(r"^%$", text, flags=re.M) if t.strip()]
    train = "\n\n".join(t for i, t in enumerate(items) if i % 10 != 0)
    val = "\n\n".join(t for i, t in enumerate(items) if i % 10 == 0)
    return train[: train_kb * 1024], val[: val_kb * 1024], len(items)


def run(cmd, log=None):
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    if log:
        with open(log, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n" + out.stdout + out.stderr + "\n")
    return out.stdout, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgelm", default=os.path.join(ROOT, "build", "src", "cli", "edgelm"))
    ap.add_argument("--teacher", default="smollm2")
    ap.add_argument("--prune", type=int, default=12)
    ap.add_argument("--train-kb", type=int, default=160)
    ap.add_argument("--val-kb", type=int, default=48)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", default="2e-4")
    ap.add_argument("--batch", default="8")
    ap.add_argument("--ctx", default="128")
    ap.add_argument("--kd", default="0.5:3", help="distillation runs, ALPHA:T[:K][,...] (K: the teacher's words kept, 0: all)")
    ap.add_argument("--reuse", action="store_true", help="keep students already trained in --keep's folder")
    ap.add_argument("--top-k", default="64")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--keep", help="folder for the models and the log (default: a temporary one)")
    ap.add_argument("--out")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="edgelm-distill-")
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, "log.txt")
    train, val, n_items = corpus(a.train_kb, a.val_kb)
    tr, va = os.path.join(work, "train.txt"), os.path.join(work, "val.txt")
    open(tr, "w").write(train)
    open(va, "w").write(val)
    e = a.edgelm
    common = ["--train", tr, "--prune-layers", str(a.prune), "--ctx", a.ctx, "--batch", a.batch, "--lr", a.lr,
              "--epochs", str(a.epochs), "--threads", a.threads, "--seed", "1", "--schedule", "cosine", "--warmup", "10"]
    rows = {}

    def student(name, file, args):
        """Trains (or with --reuse, finds) one student; its tokens and wall time go beside it."""
        path, meta = os.path.join(work, file), os.path.join(work, file + ".json")
        if not (a.reuse and os.path.exists(path) and os.path.exists(meta)):
            out, wall = run([e, "distill", "-t", a.teacher, *args, "-o", path], log)
            m = re.search(r"updates, (\d+) tokens", out)
            json.dump({"tokens": int(m.group(1)) if m else 0, "wall": wall if m else 0.0}, open(meta, "w"))
        rows[name] = {"file": file, **json.load(open(meta))}

    student("pruned, no training", "pruned.gguf", [*common[:4], "--epochs", "0"])
    student("pruned + cross-entropy only", "ce.gguf", [*common, "--kd-alpha", "1"])
    for v in a.kd.split(","):
        alpha, temp, k = (v.split(":") + [a.top_k])[:3]
        words = "every word" if k == "0" else f"top {k}"
        student(f"pruned + distillation (alpha {alpha}, T {temp}, {words})", f"kd-{alpha}-{temp}-{k}.gguf",
                [*common, "--kd-alpha", alpha, "--kd-temperature", temp, "--kd-top-k", k])
    teacher_path = subprocess.run([e, "info", a.teacher], capture_output=True, text=True).stdout.split()[1]
    rows["teacher"] = {"src": teacher_path, "tokens": None, "wall": None}
    for name, r in rows.items():
        src = r.get("src") or os.path.join(work, r["file"])
        q = os.path.join(work, "q8-" + os.path.basename(src))
        if not (a.reuse and os.path.exists(q)):
            run([e, "quantize", src, q, "q8_0"], log)
        out, _ = run([e, "perplexity", "-m", q, "-f", va, "-c", "256", "-t", a.threads], log)
        r["ppl"] = float(re.search(r"PPL = ([0-9.]+)", out).group(1))
        out, _ = run([e, "bench", "-m", q, "-p", "0", "-n", "64", "-t", "1", "-r", "3", "--json"], log)
        r["tg"] = [json.loads(l) for l in out.splitlines() if l.startswith("{")][-1]["median_ts"]
        info, _ = run([e, "info", q])
        r["params"] = float(re.search(r"parameters\s+([0-9.]+) M", info).group(1))
        r["layers"] = int(re.search(r"layers\s+(\d+)", info).group(1))
    lines = [f"teacher {a.teacher}, student without its {a.prune} least important blocks; {n_items} fortunes, "
             f"{len(train) // 1024} KiB of training text, {len(val) // 1024} KiB held out; ctx {a.ctx}, batch {a.batch}, "
             f"lr {a.lr} (cosine, 10 warm-up updates), {a.epochs} epoch(s), {a.threads} threads; distillation against "
             f"the teacher's top-k words or all of them (T^2 factor)",
             "",
             "| student | blocks | parameters (M) | held-out perplexity (Q8_0) | decode tok/s (Q8_0, 1 thread) | tokens trained | wall time (s) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        tokens = "—" if r["tokens"] is None else str(r["tokens"])
        wall = "—" if r["wall"] is None else f"{r['wall']:.0f}"
        lines.append(f"| {name} | {r['layers']} | {r['params']:.1f} | {r['ppl']:.2f} | {r['tg']:.1f} | {tokens} | {wall} |")
    ce, t = rows["pruned + cross-entropy only"], rows["teacher"]
    lines.append("")
    for name, r in rows.items():
        if name.startswith("pruned + distillation"):
            gap = (ce["ppl"] - r["ppl"]) / (ce["ppl"] - t["ppl"]) if ce["ppl"] != t["ppl"] else float("nan")
            lines.append(f"- {name[len('pruned + '):]}: closes {100 * gap:.0f} % of the perplexity gap between the cross-entropy "
                         f"student and the teacher; decodes {r['tg'] / t['tg']:.2f}x the teacher's tokens/s")
    text = "\n".join(lines)
    print(text)
    if a.out:
        open(a.out, "w").write(text + "\n")


if __name__ == "__main__":
    main()
