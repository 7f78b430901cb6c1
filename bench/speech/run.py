#!/usr/bin/env python3
"""Speech bench for `edgelm car`: word error rate of the recogniser on the rendered set
(make_set.py) per bias and noise level; intent and vehicle-action accuracy from audio beside the
same from the text; latency from the end of speech to the vehicle's action; the recogniser's
real-time factor. Prints a Markdown report (and writes it with --out).

    python3 bench/speech/make_set.py --out bench/speech/set --per-intent 3
    python3 bench/speech/run.py build/src/cli/edgelm head.gguf --set bench/speech/set --out report.md
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[len(b)]


def transcribe(binary, files, bias):
    """Per file: the utterances heard (joined), and the recogniser's time and the speech's length."""
    r = subprocess.run([binary, "car", "--transcribe", "--json", "--bias", bias, "--audio", *files],
                       capture_output=True, text=True, check=True)
    out = {f: {"text": [], "decode_ms": 0.0, "speech_s": 0.0} for f in files}
    for line in r.stdout.splitlines():
        j = json.loads(line)
        o = out[j["audio"]]
        if j["text"]:
            o["text"].append(j["text"])
        o["decode_ms"] += j["decode_ms"]
        o["speech_s"] += j["end_s"] - j["start_s"]
    return {f: {**v, "text": " ".join(v["text"])} for f, v in out.items()}


def wer(items, hyps):
    errors = sum(edit_distance(it["ref"].split(), hyps[it["wav"]]["text"].split()) for it in items)
    return 100.0 * errors / sum(len(it["ref"].split()) for it in items)


def classify(binary, head, texts):
    """The head's intent per text ("" : nothing heard, no intent)."""
    idx = [i for i, t in enumerate(texts) if t.strip()]
    got = [""] * len(texts)
    r = subprocess.run([binary, "classify", "--head", head, "-t", "1", "-"], input="\n".join(texts[i] for i in idx) + "\n",
                       capture_output=True, text=True, check=True)
    for i, line in zip(idx, r.stdout.splitlines()):
        got[i] = line.split("\t")[0]
    return got


def slot_eval(binary, head, cases, texts):
    """Per case: (intent ok, the exact call or the fallback as expected) through `car --eval`."""
    res = [None] * len(cases)
    idx = []
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for i, (c, t) in enumerate(zip(cases, texts)):
            if t.strip():
                f.write(json.dumps({**c, "text": t}) + "\n")
                idx.append(i)
            else:  # nothing heard: no action, right only where none was due
                res[i] = (False, c.get("call") is None)
        path = f.name
    r = subprocess.run([binary, "car", "--head", head, "--eval", path, "--json", "-t", "1"], capture_output=True,
                       text=True, check=True)
    os.remove(path)
    rows = [json.loads(l) for l in r.stdout.splitlines() if not l.startswith('{"summary"')]
    for i, row in zip(idx, rows):
        res[i] = (row["intent"] == row["expected_intent"], row["ok"])
    return res


def pct(xs):
    return 100.0 * sum(xs) / max(1, len(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("edgelm")
    ap.add_argument("head")
    ap.add_argument("--set", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "set"))
    ap.add_argument("--biases", nargs="+", default=["none", "car-lm", "mixed", "grammar"])
    ap.add_argument("--snrs", nargs="+", default=["clean", "10"])
    ap.add_argument("--accuracy", nargs="+", default=["none", "mixed", "grammar"],
                    help="biases whose transcripts also go through the assistant")
    ap.add_argument("--latency-files", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--latency-only", action="store_true", help="only the latency section")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.latency_only:
        a.biases, a.accuracy = [], []
    items = [json.loads(l) for l in open(os.path.join(a.set, "manifest.jsonl"))]
    for it in items:
        it["wav"] = {snr: os.path.join(a.set, snr, it["id"] + ".wav") for snr in a.snrs}
    runs = [(b, s) for b in a.biases for s in a.snrs]
    hyps = {}
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        futs = {ex.submit(transcribe, a.edgelm, [it["wav"][s] for it in items], b): (b, s) for b, s in runs}
        for fu in concurrent.futures.as_completed(futs):
            hyps[futs[fu]] = fu.result()
            print(f"transcribed {futs[fu]}", file=sys.stderr)
    lines = ["# Speech in the car: recognition, accuracy from audio, latency", "",
             f"{len(items)} utterances ({sum(it['source'] == 'clinc150-val' for it in items)} CLINC150 validation "
             f"utterances of the car intents, {sum(it['source'] == 'slots-heldout' for it in items)} held-out slot "
             "cases), rendered by bench/speech/make_set.py.", "",
             "## Word error rate (%)", "", "| bias | " + " | ".join(a.snrs) + " | RTF (CPU time / speech) |",
             "|---|" + "---:|" * (len(a.snrs) + 1)]
    for b in a.biases:
        row = [f"{wer([{**it, 'wav': it['wav'][s]} for it in items], hyps[(b, s)]):.1f}" for s in a.snrs]
        dec = sum(v["decode_ms"] for s in a.snrs for v in hyps[(b, s)].values()) / 1000
        sp = sum(v["speech_s"] for s in a.snrs for v in hyps[(b, s)].values())
        lines.append(f"| {b} | " + " | ".join(row) + f" | {dec / max(sp, 1e-9):.2f} |")
    # Accuracy: the same assistant on the text and on what was heard.
    val = [it for it in items if it["source"] == "clinc150-val"]
    slots = [it for it in items if it["source"] == "slots-heldout"]
    if a.latency_only:
        lines = lines[:4]
    else:
        lines += ["", "## From audio beside from text", "",
                  "| input | intent accuracy, CLINC150 val (%) | intent accuracy, slot cases (%) | vehicle action exact (%) |",
                  "|---|---:|---:|---:|"]
        conds = [("text", None, None)] + [(f"audio, {b}, {s}", b, s) for b in a.accuracy for s in a.snrs]
        for name, b, s in conds:
            tv = [it["text"] for it in val] if b is None else [hyps[(b, s)][it["wav"][s]]["text"] for it in val]
            ts = [it["text"] for it in slots] if b is None else [hyps[(b, s)][it["wav"][s]]["text"] for it in slots]
            got = classify(a.edgelm, a.head, tv)
            acc_val = pct([g == it["intent"] for g, it in zip(got, val)])
            res = slot_eval(a.edgelm, a.head, [it["case"] for it in slots], ts)
            lines.append(f"| {name} | {acc_val:.1f} | {pct([r[0] for r in res]):.1f} | {pct([r[1] for r in res]):.1f} |")
            print(f"accuracy {name}", file=sys.stderr)
    # Latency: typical commands (the held-out cases that expect a call), clean, the default bias.
    files = [it["wav"]["clean"] for it in slots if it["case"].get("call") and not it["case"].get("context")]
    files = files[:a.latency_files]
    r = subprocess.run([a.edgelm, "car", "--head", a.head, "--audio", *files, "--json", "-t", "1"],
                       capture_output=True, text=True, check=True)
    turns = [json.loads(l) for l in r.stdout.splitlines()]
    acted = [t for t in turns if "end_to_action_ms" in t]
    p90 = lambda v: v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]  # noqa: E731
    lines += ["", "## Latency, end of speech to vehicle action (default bias, one thread)", "",
              "The segmenter closes an utterance 300 ms after the speech stops, before this clock starts. "
              "The first 4 s of speech of a session are decoded twice (docs/car.md): those turns are listed "
              "but left out of the summary.", "", "| | median | p90 |", "|---|---:|---:|"]
    later = acted[2:] if len(acted) > 4 else acted
    for key, name in [("end_to_action_ms", "end of speech to action, wall"),
                      ("end_to_action_cpu_ms", "end of speech to action, CPU"),
                      ("finalize_ms", "of which the recogniser, wall"), ("finalize_cpu_ms", "of which the recogniser, CPU")]:
        v = sorted(t[key] for t in later)
        lines.append(f"| {name} | {statistics.median(v):.0f} ms | {p90(v):.0f} ms |")
    lines.append("")
    for t in turns:
        lines.append(f"- `{t['text']}` -> {t.get('call') or t.get('intent', '(nothing)')}: "
                     f"{t.get('end_to_action_ms', 0):.0f} ms wall, {t.get('end_to_action_cpu_ms', 0):.0f} ms CPU")
    report = "\n".join(lines) + "\n"
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
