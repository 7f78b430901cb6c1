#!/usr/bin/env python3
"""Oracle fixtures for the Gemma 3 270M forward pass, produced by llama.cpp (llama-cpp-python).

For each prompt: its token ids (with BOS, as Gemma's tokenizer adds it), llama.cpp's greedy
32-token continuation (argmax at every step, continuing past end-of-generation tokens) with the
margin between its first and second choice at each step, and the top-5 logits at several
positions. One prompt is longer than the 512-position sliding window of the local layers; it is
run with n_ctx 1024, the others with n_ctx 512. Writes tests/fixtures/model/gemma3.json.

    python3 tests/oracle/gen_gemma3_fixtures.py [MODEL.gguf]

Needs `scripts/install-deps.sh --oracle`. The default test run reads only the JSON.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
from llama_cpp import Llama

CHAT = "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n"
PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Q: What is 17 + 25?\nA:",
    CHAT.format("What is the boiling point of water?"),
    CHAT.format("Write a haiku about autumn leaves."),
    "The three primary colors are",
    "In 1969, Neil Armstrong",
    "Les fleurs du jardin sont",
    "import numpy as np\n\nx = np.arange(10)\nprint(",
    "1, 2, 3, 5, 8, 13,",
    CHAT.format("Translate 'good morning' into Spanish."),
]
# Longer than the sliding window (512): local layers must drop the oldest positions.
LONG_PROMPT = " ".join(f"Item {i}: the {['red', 'green', 'blue', 'yellow'][i % 4]} box holds {i * 7 % 23} marbles."
                       for i in range(48)) + " In summary, the box that holds the most marbles is"
N_GEN = 32


def run(llm, text):
    toks = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    llm.reset()
    llm.eval(toks)
    n_prompt = len(toks)
    top5 = []
    for pos in sorted({0, n_prompt // 2, n_prompt - 1}):
        row = np.array(llm.scores[pos], dtype=np.float64)
        ids = np.argsort(-row)[:5]
        top5.append({"pos": int(pos), "ids": [int(i) for i in ids], "logits": [float(row[i]) for i in ids]})
    greedy, margins = [], []
    for _ in range(N_GEN):
        row = np.array(llm.scores[llm.n_tokens - 1])
        nxt = int(np.argmax(row))
        top2 = np.partition(row, -2)[-2:]
        greedy.append(nxt)
        margins.append(float(top2[1] - top2[0]))
        llm.eval([nxt])
    print(f"{n_prompt:4d} tokens {text[:40]!r} -> {llm.detokenize(greedy)[:60]!r}", file=sys.stderr)
    return {"prompt": text, "tokens": [int(t) for t in toks], "greedy": greedy, "margins": margins, "top5": top5}


def load(path, n_ctx):
    kwargs = dict(model_path=path, n_ctx=n_ctx, n_batch=512, n_threads=2, logits_all=True, verbose=False, seed=0)
    return Llama(flash_attn=False, **kwargs)  # the classic attention path: F16 KV, F32 softmax


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=os.path.expanduser(
        os.path.join(os.environ.get("EDGELM_MODELS", "~/.cache/edgelm/models"), "gemma-3-270m-q4_k_m.gguf")))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = args.out or os.path.join(root, "tests", "fixtures", "model", "gemma3.json")
    sha = hashlib.sha256(open(args.model, "rb").read()).hexdigest()

    llm = load(args.model, 512)
    cases = [dict(run(llm, t), n_ctx=512) for t in PROMPTS]
    del llm
    llm = load(args.model, 1024)
    cases.append(dict(run(llm, LONG_PROMPT), n_ctx=1024))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump({"model_sha256": sha, "model_file": os.path.basename(args.model),
                   "generator": "llama-cpp-python " + __import__("llama_cpp").__version__,
                   "n_gen": N_GEN, "cases": cases}, f, indent=1)
    os.replace(out + ".tmp", out)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
