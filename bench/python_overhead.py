#!/usr/bin/env python3
"""Generation speed through edgelm.Llama against `edgelm run` and llama-cpp-python, side by side.

Same GGUF, prompt, threads and token count; greedy; the three are run in turn in every round so
that machine load hits them alike. Speed is generation tokens/s after the first token (the
prompt excluded), as `edgelm run --timings` reports it: for the two Python APIs from the arrival
times of the streamed chunks, and end to end (prompt + generation, no streaming) for the
non-streamed call. Prints a Markdown report.

    PYTHONPATH=build/python python3 bench/python_overhead.py --bin build/src/cli/edgelm \
        [-m ~/.cache/edgelm/models/smollm2.gguf] [-t 2] [-n 128] [-r 5]
"""
import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time

PROMPT = "Once upon a time, in a small village by the sea, there lived an old fisherman who"


def cli_run(a):
    p = subprocess.run([a.bin, "run", "-m", a.model, "-p", PROMPT, "-n", str(a.n), "-t", str(a.threads), "-c", "512",
                        "--temp", "0", "--timings"], capture_output=True, text=True, check=True)
    m = re.search(r"generated (\d+) tokens, ([0-9.]+) tok/s after the first", p.stderr)
    return int(m.group(1)), float(m.group(2))


def stream_speed(llm, n):
    """Tokens/s after the first from streamed chunks: (chunks - 1) / (last - first)."""
    llm.reset()
    times, parts = [], []
    for c in llm(PROMPT, max_tokens=n, temperature=0, stream=True):
        if c["choices"][0]["text"]:
            times.append(time.perf_counter())
            parts.append(c["choices"][0]["text"])
    n_tok = len(llm.tokenize("".join(parts).encode(), add_bos=False))
    return n_tok, (len(times) - 1) / (times[-1] - times[0]), "".join(parts)


def call_seconds(llm, n):
    llm.reset()
    t0 = time.perf_counter()
    r = llm(PROMPT, max_tokens=n, temperature=0)
    return r["usage"]["completion_tokens"], time.perf_counter() - t0, r["choices"][0]["text"]


def fmt(xs):
    return f"{statistics.median(xs):.1f} ({min(xs):.1f}–{max(xs):.1f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/src/cli/edgelm")
    ap.add_argument("-m", "--model", default=os.path.join(
        os.environ.get("EDGELM_MODELS", os.path.expanduser("~/.cache/edgelm/models")), "smollm2.gguf"))
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=5)
    a = ap.parse_args()

    import edgelm
    import llama_cpp
    e = edgelm.Llama(model_path=a.model, n_ctx=512, n_threads=a.threads, verbose=False)
    l = llama_cpp.Llama(model_path=a.model, n_ctx=512, n_threads=a.threads, n_threads_batch=a.threads, verbose=False)
    # Warm-up: page in the weights for all three.
    cli_run(a), stream_speed(e, 8), stream_speed(l, 8)

    res = {k: [] for k in ("cli", "edgelm_stream", "llama_stream", "edgelm_call", "llama_call")}
    counts = {}
    for _ in range(a.reps):
        n, s = cli_run(a)
        res["cli"].append(s), counts.setdefault("cli", n)
        n, s, te = stream_speed(e, a.n)
        res["edgelm_stream"].append(s), counts.setdefault("edgelm", n)
        n, s, tl = stream_speed(l, a.n)
        res["llama_stream"].append(s), counts.setdefault("llama", n)
        n, sec, _ = call_seconds(e, a.n)
        res["edgelm_call"].append(n / sec)
        n, sec, _ = call_seconds(l, a.n)
        res["llama_call"].append(n / sec)
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"# Python overhead: edgelm.Llama vs `edgelm run` vs llama-cpp-python\n")
    print(f"Model `{os.path.basename(a.model)}`, {a.threads} threads, {a.n} tokens greedy, {a.reps} alternating rounds, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"llama-cpp-python {llama_cpp.__version__}. Median (min–max).\n")
    print("| path | tokens/s after the first | vs `edgelm run` | vs llama-cpp-python |")
    print("|---|---|---|---|")
    print(f"| `edgelm run --timings` | {fmt(res['cli'])} | 1.00x | {med['cli'] / med['llama_stream']:.2f}x |")
    print(f"| edgelm.Llama, stream=True | {fmt(res['edgelm_stream'])} | {med['edgelm_stream'] / med['cli']:.3f}x | "
          f"{med['edgelm_stream'] / med['llama_stream']:.2f}x |")
    print(f"| llama-cpp-python, stream=True | {fmt(res['llama_stream'])} | {med['llama_stream'] / med['cli']:.3f}x | 1.00x |")
    print(f"\nEnd to end, one non-streamed call (prompt + generation, tokens / seconds):\n")
    print("| path | tokens/s | vs llama-cpp-python |")
    print("|---|---|---|")
    print(f"| edgelm.Llama | {fmt(res['edgelm_call'])} | {med['edgelm_call'] / med['llama_call']:.2f}x |")
    print(f"| llama-cpp-python | {fmt(res['llama_call'])} | 1.00x |")
    print(f"\nTokens generated: edgelm run {counts['cli']}, edgelm.Llama {counts['edgelm']}, "
          f"llama-cpp-python {counts['llama']}; greedy texts equal: {te == tl}.")


if __name__ == "__main__":
    sys.exit(main())
