#!/usr/bin/env python3
"""Oracle fixtures for training (backward passes, AdamW, schedule), produced by PyTorch.

For the synthetic family models "llama", "qwen2" and "gemma3" of tests/support/family_models.hpp
(written by the `make_family_model` tool), the script loads the GGUF into the equivalent Hugging
Face transformers model (float32, CPU, eager attention, no dropout), first checks that model's
logits against llama.cpp's in tests/fixtures/model/families.json (it stops if they disagree: the
conversion would be wrong), then computes on one packed, masked batch:

  * the loss and the gradient of every parameter tensor, stored under its GGUF name in the GGUF
    layout: shape (ne order), Frobenius norm, and the values at 40 sampled flat indices plus the
    8 largest |g|;
  * the losses of 10 AdamW steps with gradient clipping and a warm-up + cosine schedule.

Writes tests/fixtures/train/grads.json.

    ninja -C build make_family_model
    python3 tests/oracle/gen_train_fixtures.py [--tool build/tests/make_family_model] [FAMILY...]

Needs `scripts/install-deps.sh --oracle` (torch, transformers, gguf). The default test run reads
only the JSON.

Conventions (also written into the JSON where a consumer needs them):
  * Batch: 3 sequences of lengths 7, 12, 17, token ids uniform in [0, n_vocab) from
    numpy.random.default_rng(1000 + family_seed(name)). Each sequence runs on its own (positions
    0..len-1, causal attention inside the sequence only). target[i] = tokens[i + 1], except -1
    (no loss) at the last position and at the first 3 positions of every sequence.
  * Loss: sum over all sequences and positions with target != -1 of
    -log softmax(logits[i])[target[i]], divided by the number of such positions ("n_targets").
  * Gradients: dLoss/dW for every tensor of the GGUF file. Flat ids index the tensor's data as
    stored in the file: row-major with ne[0] fastest, id = row * ne[0] + col. For arch llama the
    file's attn_q / attn_k rows are permuted for interleaved RoPE; the HF model gets the inverse
    permutation and the gradients are permuted back, so they refer to the file's rows. Gemma
    norm weights are stored as 1 + w_hf: same gradient. token_embd's gradient includes the tied
    output projection's where there is no output.weight.
  * Sampled ids: after the tokens, the same generator draws, for each tensor in file order,
    min(40, numel) distinct flat indices (Generator.choice without replacement); the ids of the 8
    largest |g| are added, and "ids" is the sorted union.
  * AdamW: a fresh copy of the model, torch.optim.AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=0.01) over all parameters (the tied embedding once), on the same batch each step.
    Step s (s = 0..9): loss and gradients at the current weights, total L2 norm of all gradients
    (before clipping, "grad_norms"[s]), torch.nn.utils.clip_grad_norm_(params, 1.0) (scales by
    1 / (norm + 1e-6) when norm > 1), then the AdamW update with lr = 1e-3 * m(s):
        m(s) = (s + 1) / 3                          for s < 3   (1/3, 2/3, 1)
        m(s) = 0.5 * (1 + cos(pi * (s - 2) / 8))    for s >= 3  (m(2) = 1, m(10) = 0)
    AdamW (torch): w -= lr * wd * w; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), t = s + 1. Weight decay acts on
    the HF parameter: for gemma norm weights that is (w_gguf - 1), i.e. they decay towards 1.
    "losses"[s] is the loss before step s, "final_loss" the loss after the 10th step.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
from gguf import GGUFReader

FAMILIES = ["llama", "qwen2", "gemma3"]
SEQ_LENGTHS = [7, 12, 17]
N_PROMPT = 3  # leading positions of each sequence without a loss (like a chat prompt)
N_SAMPLE = 40
N_TOP = 8
ADAMW = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01, "clip": 1.0}
N_STEPS, N_WARMUP = 10, 3
SCHEDULE = ("lr(s) = lr * m(s) for step s = 0..9 (LambdaLR); m(s) = (s+1)/3 for s < 3, "
            "else 0.5*(1+cos(pi*(s-2)/8)) (m(2)=1, m(10)=0)")
MAX_REL_DIFF = 5e-3  # llama.cpp used an F16 KV cache: expect ~1e-3 of the row's largest |logit|


def family_seed(name):  # as gen_family_fixtures.py
    return sum((i + 1) * ord(ch) for i, ch in enumerate(name))


def lr_multiplier(s):
    if s < N_WARMUP:
        return (s + 1) / N_WARMUP
    return 0.5 * (1.0 + math.cos(math.pi * (s - (N_WARMUP - 1)) / (N_STEPS - (N_WARMUP - 1))))


def fmt(v):
    return float(f"{v:.9g}")


class Gguf:
    """The file's metadata and tensors (float32 arrays shaped [rows, ne0], as stored)."""

    def __init__(self, path):
        r = GGUFReader(path)
        self.meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
        self.n_vocab = len(r.fields["tokenizer.ggml.tokens"].data)
        self.arch = self.meta["general.architecture"]
        self.tensors = {}  # name -> (ne list, array)
        for t in r.tensors:
            assert t.tensor_type == 0, f"{t.name}: synthetic models are F32"
            ne = [int(x) for x in t.shape]
            self.tensors[t.name] = (ne, np.array(t.data, dtype=np.float32).reshape(list(reversed(ne))))

    def get(self, key, default=None):
        return self.meta.get(f"{self.arch}.{key}", default)


def hf_config(g):
    arch = g.arch
    n_embd, n_head = g.get("embedding_length"), g.get("attention.head_count")
    common = dict(vocab_size=g.n_vocab, hidden_size=n_embd, intermediate_size=g.get("feed_forward_length"),
                  num_hidden_layers=g.get("block_count"), num_attention_heads=n_head,
                  num_key_value_heads=g.get("attention.head_count_kv"),
                  head_dim=g.get("attention.key_length", n_embd // n_head),
                  rms_norm_eps=g.get("attention.layer_norm_rms_epsilon"),
                  max_position_embeddings=g.get("context_length"), attention_dropout=0.0,
                  tie_word_embeddings="output.weight" not in g.tensors,
                  pad_token_id=None, bos_token_id=None, eos_token_id=None)  # no padding row in the embedding
    assert g.get("rope.dimension_count") in (None, common["head_dim"]), "partial RoPE not supported"
    rope = {"rope_type": "default", "rope_theta": float(g.get("rope.freq_base", 10000.0))}
    scaling = g.get("rope.scaling.type")
    if scaling == "linear":
        rope = dict(rope, rope_type="linear", factor=float(g.get("rope.scaling.factor")))
    elif scaling not in (None, "none"):
        raise SystemExit(f"rope scaling {scaling} not supported here")
    if arch == "llama":  # llama.cpp ignores attention.sliding_window for llama
        return transformers.LlamaConfig(**common, rope_parameters=rope, attention_bias=False, mlp_bias=False,
                                        hidden_act="silu")
    if arch == "qwen2":
        return transformers.Qwen2Config(**common, rope_parameters=rope, use_sliding_window=False, hidden_act="silu")
    if arch == "gemma3":
        pattern = g.get("attention.sliding_window_pattern", 6)
        n_layer = common["num_hidden_layers"]
        # llama.cpp and HF agree: layer il is local unless (il + 1) % pattern == 0
        layer_types = ["sliding_attention" if (il + 1) % pattern else "full_attention" for il in range(n_layer)]
        local = {"rope_type": "default", "rope_theta": float(g.get("rope.freq_base_swa", 10000.0))}
        return transformers.Gemma3TextConfig(
            **common, rope_parameters={"full_attention": rope, "sliding_attention": local},
            sliding_window=g.get("attention.sliding_window"), layer_types=layer_types,
            query_pre_attn_scalar=common["head_dim"],  # llama.cpp: 1/sqrt(key_length) (all but 27B)
            final_logit_softcapping=g.get("final_logit_softcapping"),
            attn_logit_softcapping=g.get("attn_logit_softcapping"), hidden_activation="gelu_pytorch_tanh")
    raise SystemExit(f"arch {arch} not supported here")


def hf_name(arch, name):
    """HF parameter name for a GGUF tensor name."""
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return "lm_head.weight"
    _, il, rest = name.split(".", 2)
    base, kind = rest.rsplit(".", 1)
    gemma = arch.startswith("gemma")
    table = {
        "attn_norm": "input_layernorm",
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
        "ffn_norm": "pre_feedforward_layernorm" if gemma else "post_attention_layernorm",
        "post_attention_norm": "post_attention_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    }
    return f"model.layers.{il}.{table[base]}.{kind}"


def rope_permutation(g, name):
    """For arch llama, the row order the file uses for attn_q / attn_k: file row r holds HF row
    perm[r]. convert_hf_to_gguf reorders each head's rows (two halves of hd/2, rotate-half) into
    interleaved pairs: file row h*hd + 2*i + j = HF row h*hd + j*hd/2 + i. None: no permutation."""
    if g.arch != "llama":
        return None
    parts = name.split(".")
    base = parts[2] if parts[0] == "blk" else ""
    if base not in ("attn_q", "attn_k"):
        return None
    n_head = g.get("attention.head_count") if base == "attn_q" else g.get("attention.head_count_kv")
    rows = g.tensors[name][1].shape[0]
    hd = rows // n_head
    return np.arange(rows).reshape(n_head, 2, hd // 2).swapaxes(1, 2).reshape(rows)


def build_model(g):
    cfg = hf_config(g)
    cls = {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM,
           "gemma3": transformers.Gemma3ForCausalLM}[g.arch]
    torch.manual_seed(0)
    model = cls._from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    params = dict(model.named_parameters())  # a tied lm_head is not listed twice
    loaded = set()
    with torch.no_grad():
        for name, (ne, data) in g.tensors.items():
            hn = hf_name(g.arch, name)
            w = data
            perm = rope_permutation(g, name)
            if perm is not None:  # file row r = HF row perm[r]
                w = np.empty_like(data)
                w[perm] = data
            if g.arch.startswith("gemma") and name.endswith("norm.weight"):
                w = w - np.float32(1.0)  # the file stores 1 + w_hf
            p = params[hn]
            assert tuple(p.shape) == w.shape, f"{name}: {tuple(p.shape)} vs {w.shape}"
            p.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            loaded.add(hn)
    missing = set(params) - loaded
    assert not missing, f"parameters without a GGUF tensor: {sorted(missing)}"
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight is model.model.embed_tokens.weight
    return model


def logits_of(model, tokens):
    out = model(input_ids=torch.tensor([tokens], dtype=torch.long), use_cache=False)
    return out.logits[0]


def check_against_llama_cpp(model, family_ref, name):
    worst = 0.0
    with torch.no_grad():
        for prompt in family_ref["prompts"]:
            lg = logits_of(model, prompt["tokens"]).double().numpy()
            for row in prompt["rows"]:
                got = lg[row["pos"], row["ids"]]
                diff = np.max(np.abs(got - np.array(row["logits"]))) / row["absmax"]
                worst = max(worst, float(diff))
    print(f"{name:7s} max |logit - llama.cpp| / row absmax = {worst:.2e}", file=sys.stderr)
    if worst > MAX_REL_DIFF:
        raise SystemExit(f"{name}: the HF model does not reproduce llama.cpp's logits; the conversion is wrong")
    return worst


def batch_loss(model, seqs, targets):
    total, count = None, 0
    for toks, tg in zip(seqs, targets):
        lg = logits_of(model, toks)
        t = torch.tensor(tg, dtype=torch.long)
        ce = torch.nn.functional.cross_entropy(lg, t, ignore_index=-1, reduction="sum")
        total = ce if total is None else total + ce
        count += int((t != -1).sum())
    return total / count, count


def grad_entry(g, name, grad_hf, rng):
    ne, data = g.tensors[name]
    gr = grad_hf.detach().double().numpy()
    perm = rope_permutation(g, name)
    if perm is not None:
        gr = gr[perm]  # back to the file's row order
    flat = gr.reshape(-1)
    n = flat.size
    sample = rng.choice(n, min(N_SAMPLE, n), replace=False)
    top = np.argsort(-np.abs(flat), kind="stable")[:N_TOP]
    ids = sorted({int(i) for i in sample} | {int(i) for i in top})
    return {"shape": ne, "norm": fmt(np.linalg.norm(flat)), "ids": ids, "values": [fmt(flat[i]) for i in ids]}


def family_specs(tool):
    """The synthetic families the tool writes: name -> (name, arch, vocab file)."""
    listing = subprocess.run([tool, "list"], check=True, capture_output=True, text=True).stdout.split("\n")
    return {s[0]: s for s in (line.split() for line in listing if line.strip())}


def family_gguf(tool, models, name, vocab_file, tmp):
    """Writes the synthetic model `name` and reads it back: (Gguf, the tool's weights hash)."""
    path = os.path.join(tmp, name + ".gguf")
    out = subprocess.run([tool, name, os.path.join(models, vocab_file), path], check=True,
                         capture_output=True, text=True)
    g = Gguf(path)
    os.remove(path)
    return g, out.stdout.strip()


def run_family(tool, models, name, vocab_file, ref, tmp):
    g, weights_hash = family_gguf(tool, models, name, vocab_file, tmp)
    if ref and ref.get("weights_hash") != weights_hash:
        raise SystemExit(f"{name}: weights hash {weights_hash} differs from families.json's {ref.get('weights_hash')}")

    model = build_model(g)
    model.train()
    agreement = check_against_llama_cpp(model, ref, name) if ref else None

    rng = np.random.default_rng(1000 + family_seed(name))
    seqs = [[int(t) for t in rng.integers(0, g.n_vocab, n)] for n in SEQ_LENGTHS]
    targets = [[-1 if (i < N_PROMPT or i == len(s) - 1) else s[i + 1] for i in range(len(s))] for s in seqs]

    model.zero_grad(set_to_none=True)
    loss, n_targets = batch_loss(model, seqs, targets)
    loss.backward()
    params = dict(model.named_parameters())
    grads = {}
    for tname in g.tensors:  # file order
        hn = hf_name(g.arch, tname)
        if hn not in params:  # a tied lm_head
            hn = "model.embed_tokens.weight"
        grads[tname] = grad_entry(g, tname, params[hn].grad, rng)

    # AdamW on a fresh copy of the model.
    del model
    model = build_model(g)
    model.train()
    plist = list(model.parameters())
    opt = torch.optim.AdamW(plist, lr=ADAMW["lr"], betas=tuple(ADAMW["betas"]), eps=ADAMW["eps"],
                            weight_decay=ADAMW["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_multiplier)
    losses, grad_norms = [], []
    for _ in range(N_STEPS):
        opt.zero_grad(set_to_none=True)
        step_loss, _ = batch_loss(model, seqs, targets)
        step_loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(plist, ADAMW["clip"])
        losses.append(fmt(step_loss.item()))
        grad_norms.append(fmt(norm.item()))
        opt.step()
        sched.step()
    with torch.no_grad():
        final_loss, _ = batch_loss(model, seqs, targets)

    print(f"{name:7s} loss {loss.item():.6f} over {n_targets} targets, {len(grads)} tensors, "
          f"AdamW {losses[0]:.4f} -> {final_loss.item():.4f}, grad norm {grad_norms[0]:.3f}", file=sys.stderr)
    return {"arch": g.arch, "vocab_file": vocab_file, "n_vocab": g.n_vocab, "weights_hash": weights_hash,
            "llama_cpp_max_rel_diff": fmt(agreement) if agreement is not None else None,
            "sequences": seqs, "targets": targets, "loss": fmt(loss.item()), "n_targets": n_targets,
            "grads": grads,
            "adamw": dict(ADAMW, schedule=SCHEDULE, lr_multipliers=[fmt(lr_multiplier(s)) for s in range(N_STEPS)],
                          losses=losses, final_loss=fmt(final_loss.item()), grad_norms=grad_norms)}


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", default=os.path.join(root, "build", "tests", "make_family_model"))
    ap.add_argument("--models", default=os.path.expanduser(os.environ.get("EDGELM_MODELS", "~/.cache/edgelm/models")))
    ap.add_argument("--ref", default=os.path.join(root, "tests", "fixtures", "model", "families.json"),
                    help="llama.cpp's logits for the same models (the conversion check)")
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "train", "grads.json"))
    ap.add_argument("families", nargs="*", help=f"subset of {FAMILIES} (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    specs = family_specs(args.tool)
    refs = json.load(open(args.ref))["families"]
    result = {}
    if args.families and os.path.exists(args.out):
        result = json.load(open(args.out))["families"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in FAMILIES:
            if args.families and name not in args.families:
                continue
            _, arch, vocab_file = specs[name]
            result[name] = run_family(args.tool, args.models, name, vocab_file, refs.get(name), tmp)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        json.dump({"generator": "gen_train_fixtures.py", "torch": torch.__version__,
                   "transformers": transformers.__version__, "families": result}, f)
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
