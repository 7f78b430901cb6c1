#!/usr/bin/env python3
"""Intent classification benchmark on CLINC150 (validation split): trains a head for each
pooling (and an MLP variant), reports in-scope accuracy / oos recall with the oos class alone and
with the validation-chosen threshold, then measures single-utterance latency and batch
throughput with `edgelm classify --timings`.

  python3 bench/intent.py --bin build/src/cli/edgelm --data data/clinc150 --out /tmp/intent-bench

The backbone runs once over the data (features are cached under --cache-dir); every later
training run reads the cache. Prints a Markdown table and writes results.json to --out.
CLINC150: Larson et al., EMNLP 2019, CC BY 3.0."""
import argparse
import json
import os
import re
import subprocess
import sys

METRIC = re.compile(r"validation, (oos class|threshold ([0-9.]+)):\s+in-scope accuracy\s+([0-9.]+) % \((\d+)\)\s+oos recall\s+([0-9.]+) %")
TIMING = re.compile(r"classified (\d+) texts in ([0-9.]+) s: ([0-9.]+) ms per text, ([0-9.]+) texts/s.*CPU ([0-9.]+) ms per text")


def sh(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{r.stderr}")
    return r


def train(a, pooling, hidden):
    head = os.path.join(a.out, f"{pooling}-h{hidden}.gguf")
    r = sh([a.bin, "train-classifier", "-m", a.model, "--train", os.path.join(a.data, "train.jsonl"),
            "--val", os.path.join(a.data, "val.jsonl"), "-o", head, "--pooling", pooling, "--hidden", str(hidden),
            "-t", str(a.threads), "--seed", str(a.seed), "--layers", str(a.layers)]
           + (["--cache-dir", a.cache_dir] if a.cache_dir else []))
    open(os.path.join(a.out, f"{pooling}-h{hidden}.log"), "w").write(r.stdout)
    res = {"pooling": pooling, "hidden": hidden, "head": head, "layers": a.layers, "backbone": a.model}
    for m in METRIC.finditer(r.stdout):
        key = "argmax" if m.group(1) == "oos class" else "thresholded"
        res[key] = {"in_scope_acc": float(m.group(3)), "oos_recall": float(m.group(5))}
        if key == "thresholded":
            res["threshold"] = float(m.group(2))
    feat = re.search(r"features: .* in ([0-9.]+) s \((.*)\)", r.stdout)
    tr = re.search(r"training: (\d+) epochs in ([0-9.]+) s; best epoch (\d+)", r.stdout)
    res["feature_seconds"], res["feature_source"] = float(feat.group(1)), feat.group(2)
    res["epochs"], res["train_seconds"], res["best_epoch"] = int(tr.group(1)), float(tr.group(2)), int(tr.group(3))
    return res


def timing(a, backbone, head, texts, threads, batch):
    r = sh([a.bin, "classify", "-m", backbone, "--head", head, "-", "-t", str(threads), "--batch", str(batch),
            "--timings"], input="\n".join(texts) + "\n")
    m = TIMING.search(r.stderr)
    return {"threads": threads, "batch": batch, "n": int(m.group(1)), "ms_per_text": float(m.group(3)),
            "texts_per_s": float(m.group(4)),
            "cpu_ms_per_text": float(m.group(5))}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default="edgelm")
    p.add_argument("--model", default="smollm2")
    p.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "clinc150"))
    p.add_argument("--out", default="/tmp/edgelm-intent-bench")
    p.add_argument("--cache-dir", default="")
    p.add_argument("--threads", type=int, default=2, help="threads for feature extraction")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--layers", type=int, default=6, help="early exit after the backbone's first K blocks (0: all)")
    p.add_argument("--configs", default="last:0,mean:0,attention:0,mean:256,attention:256",
                   help="pooling:hidden pairs to train")
    p.add_argument("--timing-texts", type=int, default=200)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    results = {"train": [], "timing": []}
    for cfg in a.configs.split(","):
        pooling, hidden = cfg.split(":")
        res = train(a, pooling, int(hidden))
        results["train"].append(res)
        print(json.dumps(res), flush=True)
    val = [json.loads(l)["text"] for l in open(os.path.join(a.data, "val.jsonl"))][:: 15][: a.timing_texts]
    first = results["train"][0]
    for threads, batch in [(1, 1), (1, 32), (2, 1), (2, 32)]:
        t = timing(a, first["backbone"], first["head"], val, threads, batch)
        results["timing"].append(t)
        print(json.dumps(t), flush=True)
    json.dump(results, open(os.path.join(a.out, "results.json"), "w"), indent=1)
    print("\n| pooling | head | in-scope acc (oos class) | oos recall (oos class) | threshold | in-scope acc | oos recall | epochs | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["train"]:
        print(f"| {r['pooling']} | {'linear' if r['hidden'] == 0 else 'MLP ' + str(r['hidden'])} | "
              f"{r['argmax']['in_scope_acc']:.2f} | {r['argmax']['oos_recall']:.2f} | {r['threshold']:.3f} | "
              f"{r['thresholded']['in_scope_acc']:.2f} | {r['thresholded']['oos_recall']:.2f} | {r['epochs']} | "
              f"{r['train_seconds']:.1f} |")
    print("\n| threads | batch | wall ms per utterance | utterances/s | CPU ms per utterance |")
    print("|---|---|---|---|---|")
    for t in results["timing"]:
        print(f"| {t['threads']} | {t['batch']} | {t['ms_per_text']:.2f} | {t['texts_per_s']:.1f} | {t['cpu_ms_per_text']:.2f} |")


if __name__ == "__main__":
    main()
