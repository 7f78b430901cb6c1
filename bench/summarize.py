#!/usr/bin/env python3
"""Turns the raw JSON lines of bench/compare-llamacpp.sh into one Markdown report.

Inputs: llama-bench `-o jsonl` lines, `edgelm bench --json` lines (one repetition per process,
alternating), and peak-RSS lines {"tool", "threads", "max_rss_kib"}. Output (stdout): a table per
metric with the median and spread of each tool and the edgelm / llama.cpp ratio, against the
targets of issue 3 (generation >= 1.25x, prompt processing >= 1.0x, peak RSS <= 1.10x).
"""
import argparse
import json
import os
import platform
import statistics
from collections import defaultdict


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def test_name(n_prompt, n_gen):
    return f"pp{n_prompt}" if n_prompt > 0 else f"tg{n_gen}"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--llama", required=True)
    ap.add_argument("--edgelm", required=True)
    ap.add_argument("--rss", required=True)
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--load-before", default="?")
    ap.add_argument("--load-after", default="?")
    ap.add_argument("--llama-version", default="?")
    ap.add_argument("--edgelm-commit", default="?")
    ap.add_argument("--host", default="", help="bench/llamacpp.sh's llamacpp_host line")
    a = ap.parse_args()

    speed = defaultdict(list)  # (tool, threads, test) -> tokens/s samples
    meta = {}
    for r in load_jsonl(a.llama):
        key = ("llama.cpp", r["n_threads"], test_name(r["n_prompt"], r["n_gen"]))
        speed[key] += r["samples_ts"]
        meta["llama_type"] = r.get("model_type", "?")
        meta["llama_commit"] = r.get("build_commit", "?")
        meta["llama_fa"] = r.get("flash_attn", "?")
        meta["llama_ubatch"] = r.get("n_ubatch", "?")
    ttft = defaultdict(list)
    for r in load_jsonl(a.edgelm):
        key = ("edgelm", r["threads"], r["test"])
        speed[key] += r["samples_ts"]
        meta["edgelm_simd"] = r.get("simd", "?")
        meta["weight_bytes"] = r.get("weight_bytes", 0)
        meta["kv_bytes"] = r.get("kv_bytes", 0)
        meta["model_type"] = r.get("model_type", "?")
        meta["n_batch"] = r.get("n_batch", "?")
        if "ttft_ms" in r:
            ttft[r["threads"]].append(r["ttft_ms"])
        meta.setdefault("load_ms", []).append(r.get("load_ms", 0))
        if "weights_2mib_mapped_bytes" in r:
            meta.setdefault("huge", []).append(r["weights_2mib_mapped_bytes"])
    rss = defaultdict(list)
    for r in load_jsonl(a.rss):
        rss[(r["tool"], r["threads"])].append(r["max_rss_kib"])

    def med(v):
        return statistics.median(v) if v else float("nan")

    def spread(v):
        return f"{min(v):.1f} .. {max(v):.1f}" if v else "-"

    threads = sorted({k[1] for k in speed})
    tests = sorted({k[2] for k in speed}, key=lambda t: (t[:2] != "pp", t))
    name = os.path.basename(a.model)
    out = []
    out.append(f"# edgelm vs llama.cpp: {name}\n")
    out.append(f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; load average "
               f"{a.load_before} before, {a.load_after} after (shared machine: other work was running)")
    if a.host:
        out.append(f"- host: {a.host}")
    out.append(f"- edgelm {a.edgelm_commit} (+ working tree), kernels: {meta.get('edgelm_simd', '?')}, "
               f"prompt batch {meta.get('n_batch', '?')}")
    out.append(f"- llama.cpp {meta.get('llama_commit', '?')} from llama-cpp-python {a.llama_version} "
               f"(GGML_NATIVE=ON without AMX, flash_attn={meta.get('llama_fa', '?')}, ubatch {meta.get('llama_ubatch', '?')})")
    out.append(f"- model: {meta.get('model_type', '?')} weights {meta.get('weight_bytes', 0) / 2**20:.1f} MiB; "
               f"edgelm KV cache {meta.get('kv_bytes', 0) / 2**20:.1f} MiB; "
               f"edgelm load {med(meta.get('load_ms', [])):.0f} ms (median)")
    if meta.get("huge"):
        # The page cache's state for the model file: 2 MiB folios map with 2 MiB pages, which
        # moves one-thread decode of both tools by 20-30 %.
        h = meta["huge"]
        out.append(f"- page cache: edgelm mapped {min(h) / 2**20:.0f} .. {max(h) / 2**20:.0f} MiB of the model file "
                   f"with 2 MiB pages (FilePmdMapped; the rest with 4 KiB pages)")
    out.append(f"- {a.reps} repetitions per tool and test, one process each, edgelm and llama.cpp alternating;"
               f" t/s is the median over repetitions, spread is min .. max\n")

    targets = {"pp": 1.0, "tg": 1.25}
    out.append("| threads | test | llama.cpp t/s | spread | edgelm t/s | spread | ratio | target | met |")
    out.append("|--:|--:|--:|--:|--:|--:|--:|--:|:-:|")
    for t in threads:
        for test in tests:
            l = speed.get(("llama.cpp", t, test), [])
            e = speed.get(("edgelm", t, test), [])
            if not l or not e:
                continue
            ratio = med(e) / med(l)
            target = targets[test[:2]]
            out.append(f"| {t} | {test} | {med(l):.1f} | {spread(l)} | {med(e):.1f} | {spread(e)} | "
                       f"{ratio:.2f}x | >= {target:.2f}x | {'yes' if ratio >= target else 'no'} |")
    out.append("")
    out.append("| threads | peak RSS llama.cpp | peak RSS edgelm | ratio | target | met | edgelm TTFT (ms, pp) |")
    out.append("|--:|--:|--:|--:|--:|:-:|--:|")
    for t in threads:
        l = rss.get(("llama", t), [])
        e = rss.get(("edgelm", t), [])
        if not l or not e:
            continue
        ratio = med(e) / med(l)
        out.append(f"| {t} | {med(l) / 1024:.1f} MiB | {med(e) / 1024:.1f} MiB | {ratio:.2f}x | <= 1.10x | "
                   f"{'yes' if ratio <= 1.10 else 'no'} | {med(ttft.get(t, [])):.1f} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
