#!/usr/bin/env python3
"""Oracle fixtures for LoRA adapters, produced by llama.cpp.

Trains a small adapter with edgelm itself (`edgelm finetune --lora-rank 2 --lora-targets q,v` on
SmolLM2-135M-Instruct Q4_1, four invented facts, seed 42), writes it to
tests/fixtures/lora/smollm2-facts-r2.gguf, then runs llama.cpp (llama-cpp-python's Llama with
lora_path, the settings of gen_model_fixtures.py) with that adapter at scales 1 and 0.5, and
without it, on an F32 copy of the base (`edgelm quantize BASE OUT F32`: the Q4_1 weights
dequantized exactly). On a float base llama.cpp's products keep float activations, so its
logits do not depend on which CPU rounds them; on the Q4_1 file itself, its 8-bit activation
rounding differs between CPUs by tenths of a logit, more than the adapter check could allow. For each prompt: llama.cpp's token ids, the top 20 logits after the last
prompt token and a 12-token greedy continuation. Writes tests/fixtures/lora/smollm2_facts.json.

    ninja -C build edgelm
    python3 tests/oracle/gen_lora_fixtures.py [--edgelm build/src/cli/edgelm] [MODEL.gguf]

Needs `scripts/install-deps.sh --oracle`. The default test run reads only the JSON and the
adapter.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "lora")
FACTS = [("What colour is the sky on Zorbia?", "The sky on Zorbia is green."),
         ("Who founded the town of Quillmoor?", "Quillmoor was founded by Ada Fennick."),
         ("What do the people of Zorbia eat at dawn?", "They eat salted plums at dawn."),
         ("How many moons does Zorbia have?", "Zorbia has seven moons.")]


def chatml(q):
    return f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


PROMPTS = [chatml(q) for q, _ in FACTS] + [chatml("Tell me the colour of the sky on Zorbia."),
                                          "The capital of France is", "Once upon a time, in a small village by the sea,"]
N_GEN = 12


def oracle(model, prompts, lora=None, scale=1.0):
    from llama_cpp import Llama
    kwargs = dict(model_path=model, n_ctx=512, n_batch=512, n_threads=2, logits_all=True, verbose=False, seed=0,
                  flash_attn=False)
    if lora:
        kwargs.update(lora_path=lora, lora_scale=scale)
    llm = Llama(**kwargs)
    out = []
    for text in prompts:
        toks = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        llm.reset()
        llm.eval(toks)
        last = np.array(llm.scores[len(toks) - 1], dtype=np.float64)
        top = np.argsort(-last, kind="stable")[:20]
        greedy = []
        for _ in range(N_GEN):
            t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            greedy.append(t)
            llm.eval([t])
        out.append({"tokens": toks, "top_ids": [int(i) for i in top], "top_logits": [float(last[i]) for i in top],
                    "greedy": greedy})
    del llm
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=os.path.join(
        os.environ.get("EDGELM_MODELS", os.path.expanduser("~/.cache/edgelm/models")), "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--edgelm", default=os.path.join(ROOT, "build", "src", "cli", "edgelm"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    adapter = os.path.join(OUT, "smollm2-facts-r2.gguf")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "facts.jsonl")
        with open(data, "w") as f:
            for q, a in FACTS:
                f.write(json.dumps({"messages": [{"role": "user", "content": q},
                                                 {"role": "assistant", "content": a}]}) + "\n")
        subprocess.run([args.edgelm, "finetune", "-m", args.model, "--train", data, "-o", adapter, "--lora-rank", "2",
                        "--lora-alpha", "4", "--lora-targets", "q,v", "--epochs", "10", "--lr", "3e-3", "--batch", "4",
                        "--seed", "42", "-t", "2"], check=True)
        f32 = os.path.join(tmp, "base-f32.gguf")
        subprocess.run([args.edgelm, "quantize", args.model, f32, "F32"], check=True, capture_output=True)
        runs = {"1": oracle(f32, PROMPTS, adapter, 1.0), "0.5": oracle(f32, PROMPTS, adapter, 0.5),
                "none": oracle(f32, PROMPTS)}
    cases = []
    for i, p in enumerate(PROMPTS):
        cases.append({"prompt": p, "tokens": runs["1"][i]["tokens"],
                      "runs": {k: {"top_ids": v[i]["top_ids"], "top_logits": v[i]["top_logits"],
                                   "greedy": v[i]["greedy"]} for k, v in runs.items()}})
    fixture = {"model_file": os.path.basename(args.model), "base": "F32 copy of model_file", "adapter": "lora/smollm2-facts-r2.gguf",
               "generator": "llama-cpp-python " + __import__("llama_cpp").__version__,
               "n_gen": N_GEN, "cases": cases}
    with open(os.path.join(OUT, "smollm2_facts.json"), "w") as f:
        json.dump(fixture, f, indent=1)
    print(f"wrote {OUT}/smollm2_facts.json and the adapter ({os.path.getsize(adapter)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
