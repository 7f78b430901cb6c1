#!/usr/bin/env python3
"""Fine-tuning throughput, edgelm against PyTorch eager, on the same model and batch.

Full fine-tuning (default): both train every weight in float32 with AdamW and gradient clipping.
LoRA (--lora R): both train rank-R adapters on q, k, v and o (alpha 2R) beside a frozen base,
PyTorch with peft over the float32 base, edgelm over the base as quantized in --lora-bases
(default the model itself and a Q8_0 copy that `edgelm quantize` makes), with and without
--recompute. Batches of B sequences of T tokens (plain text cut into T-token windows); tokens/s
of forward + backward + optimizer update at each thread count; peak RSS of each run from
/usr/bin/time -v. PyTorch loads the same GGUF through transformers (dequantized to float32).

    python3 bench/train_vs_pytorch.py [--model PATH] [--batch 8] [--ctx 256] [--steps 2] [--threads 1,2]
    python3 bench/train_vs_pytorch.py --lora 16

Needs `scripts/install-deps.sh --oracle` (torch, transformers, gguf; peft for --lora) and a
built edgelm.
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


def peak_rss_mib(stderr):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(m.group(1)) / 1024 if m else float("nan")


def torch_worker(args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.worker_threads)
    d, f = os.path.dirname(args.model), os.path.basename(args.model)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    if args.lora:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=args.lora, lora_alpha=2 * args.lora, lora_dropout=0.0,
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    ids = tok(open(args.text).read(), return_tensors="pt").input_ids[0]
    n = args.batch * args.ctx
    opt = torch.optim.AdamW(params, lr=1e-5)
    times = []
    for s in range(args.steps + 1):  # the first step warms up
        x = ids[(s * n) % (len(ids) - n):][:n].view(args.batch, args.ctx)
        t0 = time.perf_counter()
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"tokens_per_s": n * args.steps / sum(times[1:])}))


def run_timed(cmd, env=None):
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout, peak_rss_mib(r.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/edgelm/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--edgelm", default=os.path.join(ROOT, "build", "src", "cli", "edgelm"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--lora", type=int, default=0, help="rank of LoRA adapters on q,k,v,o (0: full fine-tuning)")
    ap.add_argument("--lora-bases", default="model,q8_0",
                    help="edgelm's frozen bases for --lora: 'model' and/or quantization types of a copy")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker-threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--text", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return torch_worker(args)

    tmp = tempfile.mkdtemp(prefix="edgelm-train-bench-")
    # Enough text for steps + 1 batches of batch x ctx tokens (the essays fixture, repeated).
    essays = open(os.path.join(ROOT, "tests", "fixtures", "text", "essays.txt")).read()
    text = os.path.join(tmp, "train.txt")
    with open(text, "w") as f:
        f.write(essays * 8)
    bases = [("model", args.model)]
    if args.lora:
        bases = []
        for b in args.lora_bases.split(","):
            if b == "model":
                bases.append((os.path.basename(args.model), args.model))
                continue
            path = os.path.join(tmp, f"base-{b}.gguf")
            subprocess.run([args.edgelm, "quantize", args.model, path, b], check=True, capture_output=True)
            bases.append((b.upper(), path))
    variants = [("", []), (" --recompute", ["--recompute"])]
    rows = []
    for t in [int(x) for x in args.threads.split(",")]:
        # edgelm: two epochs over `steps` batches, timed by the second (the first step of a run
        # touches its memory for the first time; PyTorch's first step is left out likewise).
        n_tok = args.batch * args.ctx * args.steps
        words = open(text).read().split()
        part = os.path.join(tmp, f"part{t}.txt")
        out = os.path.join(tmp, "out.gguf")
        # about n_tok tokens (English BPE takes 1.2 to 1.4 tokens a word); windows of ctx tokens
        with open(part, "w") as f:
            f.write(" ".join(words[: int(n_tok / 1.3)]))
        mode = (["--lora-rank", str(args.lora), "--lora-alpha", str(2 * args.lora)] if args.lora
                else ["--full", "--out-type", "f32"])
        result = []
        for bname, bpath in bases:
            for vname, extra in variants:
                so, rss = run_timed([args.edgelm, "finetune", "-m", bpath, "--train", part, "-o", out, "--epochs", "2",
                                     "--batch", str(args.batch), "--ctx", str(args.ctx), "--lr", "1e-5", "-t", str(t)]
                                    + mode + extra)
                m = re.findall(r"([0-9.]+) tokens/s", so)
                label = f"edgelm{vname}" + (f" ({bname} base)" if args.lora else "")
                result.append((label, float(m[-1]) if m else float("nan"), rss))
        env = dict(os.environ, OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
        so, rss_p = run_timed([sys.executable, os.path.abspath(__file__), "--worker", "--worker-threads", str(t),
                               "--model", args.model, "--batch", str(args.batch), "--ctx", str(args.ctx),
                               "--steps", str(args.steps), "--text", text, "--lora", str(args.lora)], env=env)
        p_tps = json.loads(so.strip().splitlines()[-1])["tokens_per_s"]
        rows.append((t, result, p_tps, rss_p))
    what = (f"LoRA rank {args.lora} on q,k,v,o (alpha {2 * args.lora}), PyTorch + peft over the float32 base"
            if args.lora else "every weight, float32")
    print(f"model {os.path.basename(args.model)}, batch {args.batch} x {args.ctx} tokens, {what}, AdamW + clipping")
    print()
    print("| threads | trainer | tokens/s | vs PyTorch | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    for t, result, p, rp in rows:
        print(f"| {t} | PyTorch{' + peft' if args.lora else ''} | {p:.1f} | 1.00x | {rp:.0f} |")
        for label, e, rss in result:
            print(f"| {t} | {label} | {e:.1f} | {e / p:.2f}x | {rss:.0f} |")

if __name__ == "__main__":
    main()
