#!/usr/bin/env python3
"""Oracle fixtures for the architecture families, produced by llama.cpp (llama-cpp-python).

For each synthetic family model of tests/support/family_models.hpp (written by the
`make_family_model` tool: a few random F32 layers with the family's metadata and tensor names
and a real vocabulary from the model cache), llama.cpp evaluates three token-id prompts in one
batch each (logits_all=True); the longest is longer than the sliding windows (8) and crosses
KV blocks. For every position the fixture keeps the logits at 16 fixed vocabulary ids plus the
row's top 4, and the row's largest |logit| (the scale of the relative error). The weights hash
printed by the tool is stored so that the test can prove it rebuilt the same model.
Writes tests/fixtures/model/families.json.

    ninja -C build make_family_model
    python3 tests/oracle/gen_family_fixtures.py [--tool build/tests/make_family_model]

Needs `scripts/install-deps.sh --oracle`. The default test run reads only the JSON.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from llama_cpp import Llama

PROMPT_LENGTHS = [5, 19, 41]
N_SAMPLE = 16
N_TOP = 4


def family_seed(name):
    return sum((i + 1) * ord(ch) for i, ch in enumerate(name))


def run_family(tool, models, name, vocab_file, tmp):
    path = os.path.join(tmp, name + ".gguf")
    out = subprocess.run([tool, name, os.path.join(models, vocab_file), path], check=True,
                         capture_output=True, text=True)
    weights_hash = out.stdout.strip()
    llm = Llama(model_path=path, n_ctx=64, n_batch=64, n_ubatch=64, n_threads=2, logits_all=True,
                verbose=False, seed=0, flash_attn=False)  # classic attention path: F16 KV, F32 softmax
    n_vocab = llm.n_vocab()
    rng = np.random.default_rng(family_seed(name))
    sample = sorted(int(i) for i in rng.choice(n_vocab, N_SAMPLE, replace=False))
    prompts = []
    for n in PROMPT_LENGTHS:
        toks = [int(t) for t in rng.integers(0, n_vocab, n)]
        llm.reset()
        llm.eval(toks)
        rows = []
        for pos in range(n):
            row = np.array(llm.scores[pos], dtype=np.float64)
            top = [int(i) for i in np.argsort(-row)[:N_TOP]]
            ids = sorted(set(sample) | set(top))
            rows.append({"pos": pos, "absmax": float(f"{np.max(np.abs(row)):.7g}"), "argmax": top[0],
                         "ids": ids, "logits": [float(f"{row[i]:.7g}") for i in ids]})
        prompts.append({"tokens": toks, "rows": rows})
        print(f"{name:9s} {n:3d} tokens, last argmax {rows[-1]['argmax']} absmax {rows[-1]['absmax']:.3f}",
              file=sys.stderr)
    del llm
    os.remove(path)
    return {"vocab_file": vocab_file, "n_vocab": n_vocab, "weights_hash": weights_hash, "prompts": prompts}


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", default=os.path.join(root, "build", "tests", "make_family_model"))
    ap.add_argument("--models", default=os.path.expanduser(os.environ.get("EDGELM_MODELS", "~/.cache/edgelm/models")))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "model", "families.json"))
    ap.add_argument("families", nargs="*", help="subset of families (default: all)")
    args = ap.parse_args()
    listing = subprocess.run([args.tool, "list"], check=True, capture_output=True, text=True).stdout.split("\n")
    specs = [line.split() for line in listing if line.strip()]
    result = {}
    if args.families and os.path.exists(args.out):
        result = json.load(open(args.out))["families"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, arch, vocab_file in specs:
            if args.families and name not in args.families:
                continue
            result[name] = dict(run_family(args.tool, args.models, name, vocab_file, tmp), arch=arch)
    with open(args.out + ".tmp", "w") as f:
        json.dump({"generator": "llama-cpp-python " + __import__("llama_cpp").__version__, "families": result}, f)
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
