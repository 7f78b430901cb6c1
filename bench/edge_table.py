#!/usr/bin/env python3
"""The edge table: for each model and weight type, the five figures edge deployments are compared
by (parameters, memory at INT8, latency, accuracy, energy), with llama.cpp's latency and memory
on the same files in the same run. Driven by bench/edge-table.sh, which builds llama-bench.

Every figure comes from a command named in the table's notes:
  parameters, file size        edgelm bench --json (n_params), the file itself
  weights + INT8 KV            edgelm info -c KV_CTX (the 'memory' line, Q8_0 KV cache)
  peak RSS                     /usr/bin/time -v around edgelm bench / llama-bench (same work)
  TTFT, ms per token           edgelm bench -t 1 / llama-bench -t 1: a PROMPT-token prompt into
                               an empty context (time to the first token's logits), GEN tokens
                               generated one at a time (median of REPS)
  perplexity                   edgelm perplexity on tests/fixtures/text/essays.txt
  CLINC150                     edgelm train-classifier on CLINC150 train, scored on its
                               validation split (the head is trained for that very file)
  joules per token             edgelm bench --energy (RAPL / perf, or a labelled estimate)
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRIC = re.compile(r"validation, threshold ([0-9.]+):\s+in-scope accuracy\s+([0-9.]+) % \((\d+)\)\s+oos recall\s+([0-9.]+) %")
MEMORY = re.compile(r"weights \+ KV at (\d+) tokens: ([0-9.]+) MiB \(F16 KV\), ([0-9.]+) MiB \(Q8_0 KV\)")
PPL = re.compile(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)")
RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1].removeprefix("error: ")
        sys.exit(f"error: {os.path.basename(args[0])} {' '.join(args[1:3])} failed: {why}")
    return r


def timed(args):
    """Runs args under /usr/bin/time -v: (stdout, peak RSS in KiB)."""
    r = sh(["/usr/bin/time", "-v", *args])
    m = RSS.search(r.stderr)
    if not m:
        sys.exit(f"error: no peak RSS from /usr/bin/time for {' '.join(args)}")
    return r.stdout, int(m.group(1))


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


NAMES = {"smollm2": "SmolLM2-135M", "gemma3": "Gemma 3 270M"}


def variants(a, spec):
    """'smollm2:F16,Q8_0,input' -> [(label, type, path)], quantizing into --out where needed."""
    name, _, types = spec.partition(":")
    types = [t for t in (types or "input").split(",") if t]
    src = sh([a.bin, "info", name]).stdout
    path = re.search(r"^file\s+(.*)$", src, re.M)
    path = re.sub(r" \(GGUF v.*\)$", "", path.group(1).strip()) if path else name
    base = os.path.basename(path).rsplit(".gguf", 1)[0]
    out = []
    for t in types:
        if t == "input":
            out.append((base, path))
            continue
        dest = os.path.join(a.out, f"{base}.{t}.gguf")
        if not os.path.exists(dest):
            progress(f"  quantizing {base} to {t}")
            sh([a.bin, "quantize", path, dest, t, "-t", str(a.threads)])
        out.append((f"{base}.{t}", dest))
    return NAMES.get(name, base), out


def measure(a, model, label, path):
    row = {"model": model, "label": label, "file": path, "file_bytes": os.path.getsize(path),
           "requantized": path.startswith(os.path.abspath(a.out) + os.sep), "setup": setup(a)}
    progress(f"  {label}: memory")
    info = sh([a.bin, "info", path, "-c", str(a.kv_ctx)]).stdout
    m = MEMORY.search(info)
    row["kv_ctx"], row["mem_f16kv_mib"], row["mem_int8kv_mib"] = int(m.group(1)), float(m.group(2)), float(m.group(3))

    progress(f"  {label}: edgelm bench")
    out, rss = timed([a.bin, "bench", "-m", path, "-p", str(a.prompt), "-n", str(a.gen), "-t", "1", "-r", str(a.reps),
                      "--json", "--energy"])
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    pp = next(r for r in rows if r["n_prompt"] > 0)
    tg = next(r for r in rows if r["n_gen"] > 0)
    row.update(type=pp["model_type"], n_params=pp["n_params"], simd=pp["simd"],
               ttft_ms=pp["median_ms"], ms_per_token=1000.0 / tg["median_ts"], peak_rss_kib=rss,
               j_per_token_prompt=pp["joules_per_token"], j_per_token_gen=tg["joules_per_token"],
               energy_measured=pp["energy_measured"], energy_source=pp["energy_source"])

    if a.llama_bench:
        progress(f"  {label}: llama-bench")
        out, rss = timed([a.llama_bench, "-m", path, "-p", str(a.prompt), "-n", str(a.gen), "-t", "1",
                          "-r", str(a.reps), "-o", "jsonl"])
        lr = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        lpp = next(r for r in lr if r["n_prompt"] > 0)
        ltg = next(r for r in lr if r["n_gen"] > 0)
        row.update(llama_ttft_ms=lpp["avg_ns"] / 1e6, llama_ms_per_token=1000.0 / ltg["avg_ts"], llama_peak_rss_kib=rss,
                   llama_build=lpp.get("build_commit", ""))

    progress(f"  {label}: perplexity")
    ppl = PPL.search(sh([a.bin, "perplexity", "-m", path, "-f", a.text, "-c", str(a.ctx), "--chunks", str(a.chunks),
                         "-t", str(a.threads)]).stdout)
    row["ppl"], row["ppl_err"] = float(ppl.group(1)), float(ppl.group(2))

    if a.clinc:
        progress(f"  {label}: CLINC150 head")
        head = os.path.join(a.out, f"{label}.head.gguf")
        r = sh([a.bin, "train-classifier", "-m", path, "--train", os.path.join(a.clinc, "train.jsonl"),
                "--val", os.path.join(a.clinc, "val.jsonl"), "-o", head, "-t", str(a.threads), "--seed", "1",
                "--layers", str(a.layers), "--cache-dir", os.path.join(a.out, "features")] + a.head_args)
        m = METRIC.search(r.stdout)
        if not m:
            sys.exit(f"error: no validation metrics in train-classifier's output:\n{r.stdout[-1500:]}")
        row.update(clinc_threshold=float(m.group(1)), clinc_in_scope=float(m.group(2)), clinc_oos_recall=float(m.group(4)))
    return row


def mib(kib):
    return f"{kib / 1024:.0f}"


def setup(a):
    """What a run measured with, stored in every row so that --render writes the same notes."""
    return {"prompt": a.prompt, "gen": a.gen, "reps": a.reps, "kv_ctx": a.kv_ctx, "ctx": a.ctx, "chunks": a.chunks,
            "layers": a.layers, "text": os.path.relpath(a.text, ROOT), "clinc": os.path.relpath(a.clinc, ROOT) if a.clinc else "",
            "host": cpu_name(), "date": datetime.date.today().isoformat(),
            "command": " ".join(["bench/edge-table.sh"] + a.argv)}


def table(rows):
    s = rows[0]["setup"]
    llama = "llama_ttft_ms" in rows[0]
    dash = "not run" if not llama else "–"
    lines = [f"| model | params | weights | file | weights + INT8 KV ({s['kv_ctx']} tokens) | peak RSS MiB, edgelm / llama.cpp "
             f"| TTFT ms ({s['prompt']}-token prompt), edgelm / llama.cpp | ms per token, edgelm / llama.cpp "
             f"| perplexity | CLINC150 in-scope acc / oos recall | J per token, prompt / generation |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        l_rss = mib(r["llama_peak_rss_kib"]) if llama else dash
        l_ttft = f"{r['llama_ttft_ms']:.0f}" if llama else dash
        l_tok = f"{r['llama_ms_per_token']:.1f}" if llama else dash
        clinc = f"{r['clinc_in_scope']:.1f} % / {r['clinc_oos_recall']:.0f} %" if "clinc_in_scope" in r else "not run"
        est = "" if r["energy_measured"] else " (est.)"
        lines.append(f"| {r['model']} | {r['n_params'] / 1e6:.0f} M | {r['type']} | {r['file_bytes'] / 2**20:.0f} MiB "
                     f"| {r['mem_int8kv_mib']:.0f} MiB | {mib(r['peak_rss_kib'])} / {l_rss} | {r['ttft_ms']:.0f} / {l_ttft} "
                     f"| {r['ms_per_token']:.1f} / {l_tok} | {r['ppl']:.2f} ± {r['ppl_err']:.2f} | {clinc} "
                     f"| {r['j_per_token_prompt']:.3f} / {r['j_per_token_gen']:.3f}{est} |")
    src = sorted({r["energy_source"] for r in rows})
    notes = [
        "",
        f"Host: {s['host']} ({rows[0]['simd']}), one thread for latency; {s['date']}; `{s['command']}`.",
        "",
        f"- **Memory**: weights + an 8-bit (Q8_0) KV cache for {s['kv_ctx']} tokens, from `edgelm info -c {s['kv_ctx']}`; "
        f"peak RSS from `/usr/bin/time -v` around the latency run of each tool (same prompt and generation).",
        f"- **Latency**: `edgelm bench -p {s['prompt']} -n {s['gen']} -t 1 -r {s['reps']}` and `llama-bench` with the same "
        f"arguments; TTFT is the {s['prompt']}-token prompt into an empty context, ms per token the median "
        f"generation speed.",
        f"- **Perplexity**: `edgelm perplexity -f {s['text']} -c {s['ctx']} --chunks {s['chunks']}` "
        f"(a text no model here was tuned on).",
    ]
    if s["clinc"]:
        notes.append(f"- **CLINC150**: a head trained for each file (`edgelm train-classifier --layers {s['layers']} "
                     f"--seed 1`, features after the first {s['layers']} blocks) on `{s['clinc']}` "
                     f"train, scored on its validation split at the out-of-scope threshold chosen there.")
    copies = sorted({r["model"] for r in rows if r["requantized"]})
    if copies:
        notes.append("- Rows other than the file a model package ships are `edgelm quantize` copies of it (" +
                     "; ".join(f"{m}: from {next(r['type'] for r in rows if r['model'] == m and not r['requantized'])}"
                               for m in copies if any(r["model"] == m and not r["requantized"] for r in rows)) +
                     "): a wider type keeps, and cannot restore, that file's rounding.")
    notes.append(f"- **Energy**: `edgelm bench --energy`; source: {'; '.join(src)}.")
    if not llama:
        notes.append("- llama.cpp columns: not run (`--no-llamacpp`).")
    else:
        notes.append(f"- llama.cpp: llama-bench built by `bench/llamacpp.sh` (llama-cpp-python "
                     f"{os.environ.get('LLAMA_CPP_PYTHON_VERSION', '0.3.36')}'s vendored llama.cpp, "
                     f"build {rows[0].get('llama_build', '?') if rows else '?'}).")
    return "\n".join(lines + notes) + "\n"


def chart(rows, png, llama):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        progress("matplotlib missing: no chart (apt install python3-matplotlib)")
        return
    labels = [f"{r['model'].split(' ')[0].split('-')[0]}\n{r['type']}" for r in rows]
    x = range(len(rows))
    w = 0.38 if llama else 0.6
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    panels = [(f"time to first token, ms ({rows[0]['setup']['prompt']}-token prompt, 1 thread)",
               "ttft_ms", "llama_ttft_ms", 1.0),
              ("ms per generated token (1 thread)", "ms_per_token", "llama_ms_per_token", 1.0),
              ("peak RSS (MiB)", "peak_rss_kib", "llama_peak_rss_kib", 1 / 1024)]
    for ax, (title, key, lkey, scale) in zip(axes, panels):
        ax.bar([i - (w / 2 if llama and lkey else 0) for i in x], [r[key] * scale for r in rows],
               w, label="edgelm", color="tab:blue")
        if llama and lkey:
            ax.bar([i + w / 2 for i in x], [r[lkey] * scale for r in rows], w, label="llama.cpp", color="tab:gray")
            ax.legend(fontsize=8)
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "src", "cli", "edgelm"))
    p.add_argument("--llama-bench", default="", help="llama-bench binary (empty: llama.cpp columns not run)")
    p.add_argument("--model", action="append", default=[],
                   help="NAME_OR_FILE:TYPE,TYPE,... ('input' = the file as it is); repeatable")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "edge-table"))
    p.add_argument("--md", default="", help="Markdown file to write (default OUT/edge-table.md)")
    p.add_argument("--chart", default="", help="PNG chart to write (default OUT/edge-chart.png)")
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--gen", type=int, default=64)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--kv-ctx", type=int, default=2048)
    p.add_argument("--text", default=os.path.join(ROOT, "tests", "fixtures", "text", "essays.txt"))
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--chunks", type=int, default=8)
    p.add_argument("--clinc", default=os.path.join(ROOT, "data", "clinc150"), help="CLINC150 folder ('' skips)")
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--head-arg", action="append", default=[], dest="head_args",
                   help="extra train-classifier argument (repeatable, e.g. --head-arg=--epochs=5)")
    p.add_argument("--threads", type=int, default=2, help="threads for quantize, perplexity and head training")
    p.add_argument("--render", default="", help="only write the table and chart from an earlier run's results.jsonl")
    a = p.parse_args()
    shown, skip = [], False
    for arg in sys.argv[1:]:  # the command as a user types it: without the paths the wrapper adds
        if skip:
            skip = False
        elif arg in ("--bin", "--md", "--chart", "--llama-bench"):
            skip = True
        elif not arg.startswith(("--bin=", "--md=", "--chart=", "--llama-bench=")):
            shown.append(arg)
    a.argv = shown
    a.model = a.model or ["smollm2:F16,Q8_0,input,Q4_0", "gemma3:F16,Q8_0,input"]
    a.out = os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    a.md = a.md or os.path.join(a.out, "edge-table.md")
    a.chart = a.chart or os.path.join(a.out, "edge-chart.png")
    if a.render:
        rows = [json.loads(l) for l in open(a.render) if l.strip()]
        md = table(rows)
        open(a.md, "w").write(md)
        chart(rows, a.chart, "llama_ttft_ms" in rows[0])
        print(md)
        return
    rows = []
    results = os.path.join(a.out, "results.jsonl")
    with open(results, "w") as f:
        for spec in a.model:
            name, files = variants(a, spec)
            for label, path in files:
                progress(f"=== {label}")
                row = measure(a, name, label, path)
                rows.append(row)
                f.write(json.dumps(row) + "\n")
                f.flush()
    if not rows:
        sys.exit("error: no models given (--model NAME:TYPES)")
    md = table(rows)
    open(a.md, "w").write(md)
    # The measurements beside the table, for --render.
    shutil.copyfile(results, os.path.splitext(a.md)[0] + ".jsonl")
    chart(rows, a.chart, bool(a.llama_bench))
    print(md)


if __name__ == "__main__":
    main()
