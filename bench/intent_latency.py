#!/usr/bin/env python3
"""Wall-clock latency of one utterance and batch throughput of `edgelm classify`, one thread.

  python3 bench/intent_latency.py BIN BACKBONE HEAD [N=25] [--val data/clinc150/val.jsonl]

Single utterance: N validation utterances, one process each (pinned to one core with taskset),
the time `--timings` reports (model load excluded); median, min and max. Stream: 200 utterances
one at a time in one process. Batch: the same 200 with --batch 32. Prints one JSON line."""
import argparse
import json
import os
import re
import statistics
import subprocess

TIMING = re.compile(r"classified (\d+) texts in ([0-9.]+) s: ([0-9.]+) ms per text, ([0-9.]+) texts/s")
HERE = os.path.dirname(os.path.abspath(__file__))


def classify(a, *extra, stdin=None):
    r = subprocess.run(["taskset", "-c", a.cpu, a.bin, "classify", "-m", a.backbone, "--head", a.head, "-t", "1",
                        "--timings", *extra], input=stdin, capture_output=True, text=True, check=True)
    return TIMING.search(r.stderr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("backbone")
    p.add_argument("head")
    p.add_argument("n", nargs="?", type=int, default=25)
    p.add_argument("--val", default=os.path.join(HERE, "..", "data", "clinc150", "val.jsonl"))
    p.add_argument("--cpu", default="1", help="core to pin to (taskset -c)")
    a = p.parse_args()
    val = [json.loads(line)["text"] for line in open(a.val)]
    texts = val[::len(val) // a.n][:a.n]
    lat = [float(classify(a, t).group(3)) for t in texts]
    batch = "\n".join(val[::15][:200]) + "\n"
    stream = classify(a, "-", "--batch", "1", stdin=batch)
    b32 = classify(a, "-", "--batch", "32", stdin=batch)
    print(json.dumps({"head": a.head, "n": len(lat), "median_ms": statistics.median(lat), "min_ms": min(lat),
                      "max_ms": max(lat), "stream_ms_per_text": float(stream.group(3)),
                      "batch32_ms_per_text": float(b32.group(3)), "batch32_texts_per_s": float(b32.group(4))}))


if __name__ == "__main__":
    main()
