#!/usr/bin/env python3
"""Oracle fixture for distilled students, produced by llama.cpp (llama-cpp-python).

The synthetic "llama" family model of tests/support/family_models.hpp (written by the
`make_family_model` tool) is the teacher. `edgelm distill` prunes one block and trains the
student on the distillation loss (the options are in the JSON, "distill_args", and the training
text is the first "text_bytes" bytes of tests/fixtures/text/essays.txt). llama.cpp then loads
the student GGUF and evaluates two token-id prompts (logits_all=True); for every position the
fixture keeps the logits at 16 fixed vocabulary ids plus the row's top 4, and the row's largest
|logit|. The test (tests/train/test_distill.cpp) makes the same student through the library and
compares its own logits with these.
Writes tests/fixtures/train/distill_llamacpp.json.

    ninja -C build make_family_model edgelm_cli
    python3 tests/oracle/gen_distill_fixtures.py

Needs `scripts/install-deps.sh --oracle`. The default test run reads only the JSON.
"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
from llama_cpp import Llama

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPTS = [[1, 504, 3458, 314, 2301, 17, 842], [9, 1200, 4000, 23, 77, 5, 901, 2, 640, 13, 31]]
N_SAMPLE, N_TOP = 16, 4
TEXT_BYTES = 6000
DISTILL_ARGS = ["--prune-layers", "1", "--ctx", "32", "--batch", "4", "--epochs", "2", "--lr", "3e-3",
                "--kd-top-k", "16", "--out-type", "f32", "--threads", "1"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", default=os.path.join(ROOT, "build", "tests", "make_family_model"))
    ap.add_argument("--edgelm", default=os.path.join(ROOT, "build", "src", "cli", "edgelm"))
    ap.add_argument("--models", default=os.environ.get("EDGELM_MODELS", os.path.expanduser("~/.cache/edgelm/models")))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "train", "distill_llamacpp.json"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        teacher, student, text = (os.path.join(tmp, n) for n in ("teacher.gguf", "student.gguf", "train.txt"))
        out = subprocess.run([a.tool, "llama", os.path.join(a.models, "SmolLM2-135M-Instruct.Q4_1.gguf"), teacher],
                             check=True, capture_output=True, text=True)
        weights_hash = out.stdout.split()[-1]
        with open(os.path.join(ROOT, "tests", "fixtures", "text", "essays.txt"), "rb") as f:
            data = f.read()[:TEXT_BYTES]
        with open(text, "wb") as f:
            f.write(data)
        subprocess.run([a.edgelm, "distill", "-t", teacher, "--train", text, *DISTILL_ARGS, "-o", student],
                       check=True, capture_output=True, text=True)
        llm = Llama(model_path=student, n_ctx=64, n_batch=64, logits_all=True, verbose=False, n_threads=1)
        rng = np.random.default_rng(11)
        n_vocab = llm.n_vocab()
        sample = sorted(int(i) for i in rng.choice(n_vocab, N_SAMPLE, replace=False))
        prompts = []
        for toks in PROMPTS:
            llm.reset()
            llm.eval(toks)
            rows = []
            for i in range(len(toks)):
                row = np.array(llm.scores[i], dtype=np.float64)
                top = [int(t) for t in np.argsort(-row)[:N_TOP]]
                ids = sorted(set(sample) | set(top))
                rows.append({"ids": ids, "logits": [float(row[j]) for j in ids], "max_abs": float(np.abs(row).max())})
            prompts.append({"tokens": toks, "rows": rows})
    with open(a.out, "w") as f:
        json.dump({"generator": "gen_distill_fixtures.py", "weights_hash": weights_hash, "text_bytes": TEXT_BYTES,
                   "distill_args": DISTILL_ARGS, "prompts": prompts}, f, indent=0)
        f.write("\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
