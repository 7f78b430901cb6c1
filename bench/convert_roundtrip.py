#!/usr/bin/env python3
"""The real-model check of edgelm convert and export --hf (not run in CI: it needs torch,
transformers, llama-cpp-python and the SmolLM2 model):

    python3 bench/convert_roundtrip.py        # EDGELM_BIN (default build/src/cli/edgelm), $EDGELM_MODELS

No Hugging Face checkpoint is reachable without network beyond the package index, so the
checkpoint is made from the SmolLM2-135M-Instruct GGUF the model cache holds:
  1. edgelm quantize smollm2.gguf -> F32 (the Q4_1 weights dequantized)
  2. edgelm export --hf              -> config.json, model.safetensors, tokenizer files
  3. transformers loads it: logits on a prompt vs llama.cpp on the F32 GGUF (F32 KV cache),
     Hugging Face's tokenizer vs llama.cpp's on tests/oracle/strings.json
  4. edgelm convert of that checkpoint (--type f32): every tensor and the vocabulary equal to
     step 1's, bit for bit; edgelm perplexity equal on both files
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from gguf import GGUFReader
import llama_cpp

ROOT = Path(__file__).resolve().parents[1]
EDGELM = os.environ.get("EDGELM_BIN", str(ROOT / "build/src/cli/edgelm"))
MODELS = Path(os.environ.get("EDGELM_MODELS", Path.home() / ".cache/edgelm/models"))
PROMPT = "The capital of France is Paris. The capital of Germany is"


def run(*args):
    out = subprocess.run([EDGELM, *args], check=True, capture_output=True, text=True)
    return out.stdout + out.stderr


def main():
    tmp = Path(tempfile.mkdtemp())
    f32, hf, back = tmp / "smollm2-f32.gguf", tmp / "smollm2-hf", tmp / "smollm2-back.gguf"
    run("quantize", str(MODELS / "smollm2.gguf"), str(f32), "F32")
    print(run("export", "-m", str(f32), "--hf", str(hf)).strip())
    model = transformers.AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32).eval()
    tok = transformers.AutoTokenizer.from_pretrained(hf)
    llm = llama_cpp.Llama(model_path=str(f32), n_ctx=256, logits_all=True, verbose=False, type_k=0, type_v=0)
    ids = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    assert ids == tok(PROMPT, add_special_tokens=False)["input_ids"], "prompt tokenizes differently"
    llm.eval(ids)
    lc = np.array(llm.scores[: len(ids)])
    with torch.no_grad():
        hf_logits = model(torch.tensor([ids])).logits[0].numpy()
    diff = np.abs(lc - hf_logits).max()
    print(f"transformers vs llama.cpp on the exported model: {len(ids)} tokens, max |logit diff| {diff:.2e} "
          f"(logits {hf_logits.min():.1f}..{hf_logits.max():.1f}); greedy next token "
          f"{tok.decode([int(hf_logits[-1].argmax())])!r} / {tok.decode([int(lc[-1].argmax())])!r}")
    corpus = [s for s in json.loads((ROOT / "tests/oracle/strings.json").read_text()) if isinstance(s, str)]
    same = sum(llm.tokenize(s.encode(), add_bos=False, special=True) == tok(s, add_special_tokens=False)["input_ids"]
               for s in corpus)
    print(f"tokenizer: Hugging Face's equals llama.cpp's on {same} of {len(corpus)} corpus strings")
    print(run("convert", str(hf), str(back), "--type", "f32").strip())
    a, b = GGUFReader(str(f32)), GGUFReader(str(back))
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    equal = sum(np.array_equal(ta[n].data, tb[n].data) for n in ta if n in tb)
    print(f"convert of the exported checkpoint: {equal} of {len(ta)} tensors bit for bit equal "
          f"({len(tb)} tensors in the converted file)")
    for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"]:
        fa, fb = a.fields[key], b.fields[key]
        va = [bytes(fa.parts[i]) for i in fa.data]
        vb = [bytes(fb.parts[i]) for i in fb.data]
        print(f"  {key}: {'equal' if va == vb else 'DIFFERENT'}")
    text = tmp / "text.txt"
    text.write_text((ROOT / "README.md").read_text()[:6000])
    for f in (f32, back):
        out = run("perplexity", "-m", str(f), "-f", str(text), "-c", "256", "--chunks", "2", "-t", "2")
        print(f"  edgelm perplexity {f.name}: {[l for l in out.splitlines() if 'PPL' in l or 'ppl' in l][-1:]}")


if __name__ == "__main__":
    sys.exit(main())
