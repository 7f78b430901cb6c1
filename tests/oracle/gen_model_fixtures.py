#!/usr/bin/env python3
"""Oracle fixtures for the forward pass, produced by llama.cpp (through llama-cpp-python).

For each prompt: its token ids, llama.cpp's greedy 32-token continuation (argmax at every
step, continuing past end-of-generation tokens so the comparison is always 32 long) with the
logit margin between its first and second choice at each step, and the top-5 logits at several
positions. Writes tests/fixtures/model/<name>.json.

    python3 tests/oracle/gen_model_fixtures.py [MODEL.gguf] [--name smollm2]

Needs `scripts/install-deps.sh --oracle`. The default test run reads only the JSON.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
from llama_cpp import Llama

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Q: What is 17 + 25?\nA:",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWrite a haiku about autumn leaves.<|im_end|>\n<|im_start|>assistant\n",
    "The three primary colors are",
    "In 1969, Neil Armstrong",
    "Les fleurs du jardin sont",
    "import numpy as np\n\nx = np.arange(10)\nprint(",
    "1, 2, 3, 5, 8, 13,",
    "Photosynthesis is the process by which",
    "<|im_start|>user\nTranslate 'good morning' into Spanish.<|im_end|>\n<|im_start|>assistant\n",
]
N_GEN = 32


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=os.path.expanduser(
        os.path.join(os.environ.get("EDGELM_MODELS", "~/.cache/edgelm/models"), "SmolLM2-135M-Instruct.Q4_1.gguf")))
    ap.add_argument("--name", default="smollm2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = args.out or os.path.join(root, "tests", "fixtures", "model", f"{args.name}.json")

    sha = hashlib.sha256(open(args.model, "rb").read()).hexdigest()
    kwargs = dict(model_path=args.model, n_ctx=512, n_batch=512, n_threads=2, logits_all=True,
                  verbose=False, seed=0)
    try:
        llm = Llama(flash_attn=False, **kwargs)  # the classic attention path: F16 KV, F32 softmax
    except TypeError:
        llm = Llama(**kwargs)
    cases = []
    for text in PROMPTS:
        toks = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
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
            margins.append(float(top2[1] - top2[0]))  # how far the choice was from a tie
            llm.eval([nxt])
        cases.append({"prompt": text, "tokens": [int(t) for t in toks], "greedy": greedy, "margins": margins,
                      "top5": top5})
        print(f"{len(cases):2d}/{len(PROMPTS)} {text[:40]!r} -> {llm.detokenize(greedy)[:60]!r}", file=sys.stderr)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump({"model_sha256": sha, "model_file": os.path.basename(args.model),
                   "generator": "llama-cpp-python " + __import__("llama_cpp").__version__,
                   "n_gen": N_GEN, "cases": cases}, f, indent=1)
    os.replace(out + ".tmp", out)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
