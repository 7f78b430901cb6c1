#!/usr/bin/env python3
"""Speculative decoding against plain decoding and against llama.cpp's speculative tools, on the
same model, draft and prompts, in one run.

Drafters:
  - a draft model: a student distilled from the target (`edgelm distill`, the target's least
    important blocks dropped, trained on the target's own answers to bench/prompts/
    distill-questions.txt with its top-64 distributions), made once and kept in --keep;
  - self-speculation (--draft-exit K): the target's first K blocks and its output head;
  - prompt lookup.
Prompt sets (bench/prompts/): general.jsonl (chat questions), extraction.jsonl (summaries,
extraction, rewriting: the answer repeats the input) and adversarial.jsonl (a passage and a
request for new text about it -- a different story, a translation, new words -- so that the
passage's n-grams mislead prompt lookup; the draft model and the early exit fail on it as on
any free text).

edgelm's numbers come from `edgelm bench --prompts`, which alternates plain and speculative runs
of each prompt; llama.cpp's from llama-speculative / llama-lookup (built from the pinned
llama-cpp-python source package, bench/llamacpp.sh) and llama-bench's tg for its plain decode.

    python3 bench/speculative.py [--threads 1] [--n 128] [--reps 2] [--prune 22] [--keep DIR]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = os.path.join(ROOT, "bench", "prompts")
EDGELM = os.environ.get("EDGELM_BIN", os.path.join(ROOT, "build", "src", "cli", "edgelm"))
PASS_COSTS = []  # seconds of a verification pass by its token count, one list per edgelm bench run
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chat(user):
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out


def llama_tools():
    """Builds (once) and returns llama.cpp's tools: bench, speculative, lookup."""
    script = ("source bench/llamacpp.sh && build_llamacpp >&2 && "
              "echo \"$llama_bench\" && echo \"$llama_speculative\" && echo \"$llama_lookup\"")
    out = run(["bash", "-c", script], cwd=ROOT)
    return out.stdout.split()


def make_student(a, target, path):
    """The target's own answers to the distillation questions, then `edgelm distill` on them."""
    questions = [q for q in open(os.path.join(PROMPTS, "distill-questions.txt")).read().splitlines() if q.strip()]
    data = os.path.join(a.keep, "teacher-answers.jsonl")
    if not os.path.exists(data):
        rows = []
        for i, q in enumerate(questions):
            p = chat(q)
            out = run([EDGELM, "run", "-m", target, "-p", p, "-n", "192", "--temp", "0.7", "-s", str(i), "-t", "2"])
            answer = out.stdout[len(p):].strip() if out.stdout.startswith(p) else out.stdout.strip()
            rows.append({"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q},
                                      {"role": "assistant", "content": answer}]})
            print(f"teacher answer {i + 1}/{len(questions)}", file=sys.stderr)
        with open(data, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    t0 = time.time()
    run([EDGELM, "distill", "-t", target, "--prune-layers", str(a.prune), "--train", data, "-o", path,
         "--ctx", "320", "--batch", "4", "--lr", "5e-4", "--epochs", str(a.epochs), "--schedule", "cosine",
         "--warmup", "10", "--kd-top-k", "64", "--threads", "2", "--seed", "1"])
    print(f"student distilled in {time.time() - t0:.0f} s", file=sys.stderr)


def edgelm_bench(target, drafter, prompts, a):
    out = run([EDGELM, "bench", "-m", target, *drafter, "--prompts", prompts, "-n", str(a.n), "-t", str(a.threads),
               "-r", str(a.reps), "--json"])
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    costs = [r for r in rows if "pass_seconds_by_tokens" in r]
    if costs:
        PASS_COSTS.append(costs[0]["pass_seconds_by_tokens"])
    return rows[-1]


def prompt_texts(prompts):
    out = []
    for line in open(prompts):
        if line.strip():
            j = json.loads(line)
            out.append(j["prompt"] if isinstance(j, dict) else j)
    return out


def llama_speed(tool, target, draft, prompts, a):
    """Decoded tokens per second of llama-speculative or llama-lookup over the prompt set, and
    its acceptance (drafted and accepted tokens summed over the prompts)."""
    tokens = seconds = drafted = accepted = 0.0
    with tempfile.TemporaryDirectory() as d:
        for text in prompt_texts(prompts):
            pf = os.path.join(d, "prompt.txt")
            with open(pf, "w") as f:
                f.write(text)
            cmd = [tool, "-m", target, "-f", pf, "-n", str(a.n), "--temp", "0", "-t", str(a.threads),
                   "--spec-draft-n-max", str(a.draft_max), "-c", "2048", "-s", "1"]
            if draft:
                cmd += ["-md", draft, "-td", str(a.threads), "--spec-draft-n-min", "0"]
            out = subprocess.run(cmd, capture_output=True, text=True)
            log = out.stdout + out.stderr
            m = re.search(r"decoded\s+(\d+)\s+tokens in\s+([\d.]+)\s+seconds", log)
            if out.returncode != 0 or not m:
                sys.exit(f"failed: {' '.join(cmd)}\n{log[-3000:]}")
            tokens += float(m.group(1))
            seconds += float(m.group(2))
            nd = re.search(r"n_drafted\s*=\s*(\d+)", log)
            na = re.search(r"n_accept\s*=\s*(\d+)", log)
            drafted += float(nd.group(1)) if nd else 0
            accepted += float(na.group(1)) if na else 0
    return tokens / seconds, (accepted / drafted if drafted else 0.0)


def llama_plain(bench, target, a):
    out = run([bench, "-m", target, "-p", "0", "-n", str(a.n), "-t", str(a.threads), "-r", str(max(2, a.reps)),
               "-o", "json"])
    return json.loads(out.stdout)[0]["avg_ts"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default=os.path.expanduser("~/.cache/edgelm/models/smollm2.gguf"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--prune", type=int, default=22, help="blocks the student drops")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--draft-exit", type=int, default=8)
    ap.add_argument("--draft-max", type=int, default=8)
    ap.add_argument("--keep", default=os.path.expanduser("~/.cache/edgelm/bench-speculative"))
    ap.add_argument("--skip-llamacpp", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.keep, exist_ok=True)
    target = os.path.realpath(a.target)
    student = os.path.join(a.keep, f"student-drop{a.prune}.gguf")
    if not os.path.exists(student):
        make_student(a, target, student)

    sets = {name: os.path.join(PROMPTS, name + ".jsonl") for name in ("general", "extraction", "adversarial")}
    draft_max = ["--draft-max", str(a.draft_max)]
    cases = [("general", "draft model", ["--draft", student, *draft_max]),
             ("general", f"early exit ({a.draft_exit} blocks)", ["--draft-exit", str(a.draft_exit), *draft_max]),
             ("extraction", "prompt lookup", ["--lookup", *draft_max]),
             ("extraction", "prompt lookup, fixed length", ["--lookup", "--draft-fixed", *draft_max]),
             ("adversarial", "prompt lookup", ["--lookup", *draft_max]),
             ("adversarial", "prompt lookup, fixed length", ["--lookup", "--draft-fixed", *draft_max]),
             ("adversarial", "draft model", ["--draft", student, *draft_max]),
             ("adversarial", f"early exit ({a.draft_exit} blocks)", ["--draft-exit", str(a.draft_exit), *draft_max])]
    tools = None if a.skip_llamacpp else llama_tools()
    plain_llama = llama_plain(tools[0], target, a) if tools else None

    print(f"target {os.path.basename(target)}, student {os.path.basename(student)}, {a.n} new tokens per prompt, "
          f"greedy, {a.threads} thread(s), --draft-max {a.draft_max}, {a.reps} repetitions (plain and speculative "
          f"alternated)\n")
    head = "| prompts | drafter | edgelm plain t/s | edgelm speculative t/s | speed-up | acceptance | kept per step | same text |"
    sep = "|---|---|--:|--:|--:|--:|--:|:-:|"
    if tools:
        head += " llama.cpp plain t/s | llama.cpp speculative t/s | its acceptance | edgelm / llama.cpp speculative |"
        sep += "--:|--:|--:|--:|"
    print(head)
    print(sep)
    for set_name, label, drafter in cases:
        r = edgelm_bench(target, drafter, sets[set_name], a)
        row = (f"| {set_name} | {label} | {r['plain_tokens_per_second']:.1f} | {r['speculative_tokens_per_second']:.1f} "
               f"| {r['speedup']:.2f}x | {r['acceptance_rate']:.2f} | {r['mean_accepted']:.2f} "
               f"| {r['same_text']} of {r['prompts']} |")
        if tools:
            llama = None
            if label == "draft model":
                llama = llama_speed(tools[1], target, student, sets[set_name], a)
            elif label == "prompt lookup":
                llama = llama_speed(tools[2], target, None, sets[set_name], a)
            if llama:
                row += (f" {plain_llama:.1f} | {llama[0]:.1f} | {llama[1]:.2f} "
                        f"| {r['speculative_tokens_per_second'] / llama[0]:.2f}x |")
            else:
                row += f" {plain_llama:.1f} | n/a | | |"
        print(row, flush=True)
    if PASS_COSTS:
        n = len(PASS_COSTS[0])
        med = [sorted(c[i] for c in PASS_COSTS)[len(PASS_COSTS) // 2] for i in range(n)]
        print(f"\nA verification pass over n tokens (median of {len(PASS_COSTS)} runs' fastest), in one-token "
              f"passes (n = 1: {med[0] * 1e3:.2f} ms):\n")
        print("| n | " + " | ".join(str(i + 1) for i in range(n)) + " |")
        print("|---|" + "--:|" * n)
        print("| pass / one-token pass | " + " | ".join(f"{m / med[0]:.2f}" for m in med) + " |")


if __name__ == "__main__":
    main()
