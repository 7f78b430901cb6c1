#!/usr/bin/env python3
"""Slot exact-match accuracy and per-command latency of the in-car assistant, one thread.

  python3 bench/car_slots.py BIN HEAD [--model smollm2] [--out report.md]

Runs `edgelm car --eval` on the dev and held-out slot sets (tests/fixtures/car/), once with the
classifier picking the intent (end to end) and once with the expected intent given (the
argument filling alone), pinned to one core. Prints a Markdown table (and the misses), and
writes it to --out when given. Tune prompts on dev only."""
import argparse
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SETS = [("dev", "slots-dev.jsonl"), ("held-out", "slots-heldout.jsonl")]


def evaluate(a, path, gold):
    cmd = ["taskset", "-c", a.cpu, a.bin, "car", "-m", a.model, "-t", "1", "--eval", path, "--json"]
    cmd += ["--gold-intent"] if gold else ["--head", a.head]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return rows[-1]["summary"], rows[:-1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("head")
    p.add_argument("--model", default="smollm2")
    p.add_argument("--cpu", default="1", help="core to pin to (taskset -c)")
    p.add_argument("--out")
    a = p.parse_args()
    lines = ["| set | intent | commands | exact-match arguments | fallback where due | intent accuracy "
             "| ms / command, median / p95 (wall) | CPU ms, median / p95 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    misses = []
    for name, f in SETS:
        for gold in (False, True):
            s, rows = evaluate(a, os.path.join(HERE, "..", "tests", "fixtures", "car", f), gold)
            lines.append(f"| {name} | {'given' if gold else 'classifier'} | {s['commands']} "
                         f"| **{s['exact_match_pct']:.1f} %** | {s['fallback_ok_pct']:.0f} % of {s['fallback_cases']} "
                         f"| {'-' if gold else '%.1f %%' % s['intent_accuracy_pct']} "
                         f"| {s['ms_median']:.0f} / {s['ms_p95']:.0f} | {s['cpu_ms_median']:.0f} / {s['cpu_ms_p95']:.0f} |")
            misses += [f"- {name}, intent {'given' if gold else 'classifier'}: \"{r['text']}\""
                       + (f" (after {r['context']})" if r.get("context") else "")
                       + f": expected `{r['expected']}`, got `{r['got']}` ({r['intent']}, `{r['arguments']}`)"
                       for r in rows if not r["ok"]]
    text = "\n".join(lines) + "\n\nMisses:\n\n" + "\n".join(misses) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
