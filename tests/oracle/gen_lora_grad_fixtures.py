#!/usr/bin/env python3
"""Oracle fixtures for LoRA training, produced by PyTorch + peft.

For the synthetic family models "llama", "qwen2" and "gemma3" (as gen_train_fixtures.py, whose
GGUF -> transformers conversion this script reuses), peft's LoRA (r = 4, lora_alpha = 8, no
dropout, targets q_proj k_proj v_proj o_proj gate_proj up_proj down_proj) is put on every block
of the float32 model, A and B are set to known values, and on one packed, masked batch the
script computes the loss and the gradient of every adapter matrix, stored under edgelm's
(llama.cpp's) adapter tensor names "<base tensor>.lora_a" / ".lora_b" in the GGUF layout.

Writes tests/fixtures/train/lora_grads.json.

    ninja -C build make_family_model
    python3 tests/oracle/gen_lora_grad_fixtures.py [--tool build/tests/make_family_model] [FAMILY...]

Needs `scripts/install-deps.sh --oracle` (torch, transformers, peft, gguf). The default test run
reads only the JSON.

Conventions (also in the JSON):
  * Batch and loss: as gen_train_fixtures.py (3 sequences of 7, 12, 17 tokens, no loss on the
    first 3 positions and the last), with the generator numpy.random.default_rng(2000 +
    family_seed(name)).
  * Matrices in order: block 0..n_layer-1, and in each block q k v o gate up down; m is the
    matrix's index in that order. A (GGUF ne = [n_in, r], stored as r rows of n_in, peft's
    lora_A.weight) and B (ne = [r, n_out], n_out rows of r, peft's lora_B.weight), as float32
    of the float64 values, flat id i in the file's layout:
        A[i] = 0.25 * sin(0.7 * i + 1.3 * m + 0.1)
        B[i] = 0.05 * cos(0.9 * i + 0.5 * m + 0.3)
    For arch llama the file's attn_q / attn_k rows are permuted for interleaved RoPE: B's rows
    of q and k follow the file's rows (peft gets them permuted like the weights), and their
    gradients are permuted back.
  * Product: y = W x + (alpha / r) * B (A x).
  * Gradients: norm, and the values at 40 sampled flat indices plus the 8 largest |g| (the same
    generator, after the tokens, per matrix in the order above, A before B).
"""
import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np
import peft
import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_train_fixtures as base  # noqa: E402

RANK, ALPHA = 4, 8.0
TARGETS = [("q", "attn_q", "self_attn.q_proj"), ("k", "attn_k", "self_attn.k_proj"),
           ("v", "attn_v", "self_attn.v_proj"), ("o", "attn_output", "self_attn.o_proj"),
           ("gate", "ffn_gate", "mlp.gate_proj"), ("up", "ffn_up", "mlp.up_proj"),
           ("down", "ffn_down", "mlp.down_proj")]


def init_values(n, m, a):
    i = np.arange(n, dtype=np.float64)
    if a:
        return (0.25 * np.sin(0.7 * i + 1.3 * m + 0.1)).astype(np.float32)
    return (0.05 * np.cos(0.9 * i + 0.5 * m + 0.3)).astype(np.float32)


def run_family(tool, models, name, vocab_file, tmp):
    g, weights_hash = base.family_gguf(tool, models, name, vocab_file, tmp)

    model = base.build_model(g)
    cfg = peft.LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, bias="none",
                          target_modules=[t[2].split(".")[1] for t in TARGETS])
    model = peft.get_peft_model(model, cfg)
    model.train()
    n_layer = g.get("block_count")
    layers = model.base_model.model.model.layers
    matrices = []  # (gguf name, module, perm)
    with torch.no_grad():
        m = 0
        for il in range(n_layer):
            for _, gname, hpath in TARGETS:
                tname = f"blk.{il}.{gname}.weight"
                module = layers[il]
                for part in hpath.split("."):
                    module = getattr(module, part)
                A = module.lora_A["default"].weight
                B = module.lora_B["default"].weight
                a = init_values(A.numel(), m, True).reshape(A.shape)
                b = init_values(B.numel(), m, False).reshape(B.shape)
                perm = base.rope_permutation(g, tname)
                if perm is not None:  # file row r = HF row perm[r]
                    bh = np.empty_like(b)
                    bh[perm] = b
                    b = bh
                A.copy_(torch.from_numpy(np.ascontiguousarray(a)))
                B.copy_(torch.from_numpy(np.ascontiguousarray(b)))
                matrices.append((tname, module, perm))
                m += 1
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n in trainable) and len(trainable) == 2 * len(matrices), trainable

    rng = np.random.default_rng(2000 + base.family_seed(name))
    seqs = [[int(t) for t in rng.integers(0, g.n_vocab, n)] for n in base.SEQ_LENGTHS]
    targets = [[-1 if (i < base.N_PROMPT or i == len(s) - 1) else s[i + 1] for i in range(len(s))] for s in seqs]
    model.zero_grad(set_to_none=True)
    loss, n_targets = base.batch_loss(model, seqs, targets)
    loss.backward()

    grads = {}
    for tname, module, perm in matrices:
        for suffix, p in ((".lora_a", module.lora_A["default"].weight), (".lora_b", module.lora_B["default"].weight)):
            gr = p.grad.detach().double().numpy()
            if perm is not None and suffix == ".lora_b":
                gr = gr[perm]
            flat = gr.reshape(-1)
            sample = rng.choice(flat.size, min(base.N_SAMPLE, flat.size), replace=False)
            top = np.argsort(-np.abs(flat), kind="stable")[:base.N_TOP]
            ids = sorted({int(i) for i in sample} | {int(i) for i in top})
            shape = [gr.shape[1], gr.shape[0]]  # ne order
            grads[tname + suffix] = {"shape": shape, "norm": base.fmt(np.linalg.norm(flat)), "ids": ids,
                                     "values": [base.fmt(flat[i]) for i in ids]}
    print(f"{name:7s} LoRA loss {loss.item():.6f} over {n_targets} targets, {len(grads)} adapter tensors",
          file=sys.stderr)
    return {"arch": g.arch, "vocab_file": vocab_file, "weights_hash": weights_hash, "sequences": seqs,
            "targets": targets, "loss": base.fmt(loss.item()), "n_targets": n_targets, "grads": grads}


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", default=os.path.join(root, "build", "tests", "make_family_model"))
    ap.add_argument("--models", default=os.path.expanduser(os.environ.get("EDGELM_MODELS", "~/.cache/edgelm/models")))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "train", "lora_grads.json"))
    ap.add_argument("families", nargs="*", help=f"subset of {base.FAMILIES} (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    specs = base.family_specs(args.tool)
    result = {}
    if args.families and os.path.exists(args.out):
        result = json.load(open(args.out))["families"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in base.FAMILIES:
            if args.families and name not in args.families:
                continue
            _, arch, vocab_file = specs[name]
            result[name] = run_family(args.tool, args.models, name, vocab_file, tmp)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        json.dump({"generator": "gen_lora_grad_fixtures.py", "torch": torch.__version__,
                   "transformers": transformers.__version__, "peft": peft.__version__,
                   "rank": RANK, "alpha": ALPHA, "targets": [t[0] for t in TARGETS],
                   "init": "A[i] = 0.25 sin(0.7 i + 1.3 m + 0.1), B[i] = 0.05 cos(0.9 i + 0.5 m + 0.3)",
                   "families": result}, f)
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
