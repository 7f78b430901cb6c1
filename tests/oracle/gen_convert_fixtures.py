#!/usr/bin/env python3
"""Tiny Hugging Face checkpoints, one per family edgelm convert reads, and their oracle outputs.

    python3 tests/oracle/gen_convert_fixtures.py     # needs torch, transformers, tokenizers,
                                                     # llama-cpp-python and a built edgelm
                                                     # ($EDGELM_BIN, default build/src/cli/edgelm)

No network: every model is a random-weight `save_pretrained` of a small configuration, and every
tokenizer is trained here with the `tokenizers` library on tests/oracle/strings.json plus a few
paragraphs, in the shape of a real family's tokenizer.json:
  smollm  byte-level BPE, digits split one by one (SmolLM2)        llama
  qwen2   byte-level BPE, Qwen 2's split pattern                   qwen2
  gpt2    byte-level BPE, GPT-2's pattern                          stablelm
  llama3  byte-level BPE, Llama 3's split pattern and whole-word     llama3 (a llama with an
          lookup (ignore_merges), BOS from the post-processor      untied output)
  spm     BPE with byte fallback and spaces as U+2581 (Gemma)      gemma, gemma2, gemma3
  spm-phi3  the same with Phi-3's special tokens (llama.cpp looks      phi3
            them up in a model named like Phi-3)

Writes (committed; the default test run needs none of the above):
  tests/fixtures/convert/<family>/   config.json, model.safetensors, tokenizer.json,
                                     tokenizer_config.json (float32 weights)
  tests/fixtures/convert/expected.json
      per family: token sequences; transformers' logits and llama.cpp's logits (of the GGUF
      edgelm convert writes, --type f32, F16 KV cache as edgelm's) at every position for every
      third vocabulary id, and how far transformers and llama.cpp are apart with an F32 and an
      F16 KV cache;
      per tokenizer: the ids Hugging Face's tokenizer gives for each corpus string
      (add_special_tokens=False).
Also checks, and prints, that transformers loads what `edgelm export --hf` writes from the
converted llama model with the same logits (the round trip tests/convert checks bit for bit).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/fixtures/convert"
CORPUS = ROOT / "tests/oracle/strings.json"
EDGELM = Path(os.environ.get("EDGELM_BIN", ROOT / "build/src/cli/edgelm"))
VOCAB = 384
ID_STRIDE = 3

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
TRAIN_TEXT = """The quick brown fox jumps over the lazy dog. In 2024, 1,234 people visited the museum;
prices rose 3.5% to $12.99. Hello, world! What's up? I'm fine, you're late, we'll see, they'd go.
Il était une fois un petit chat qui aimait le café. Über den Wolken muss die Freiheit grenzenlos sein.
Привет, как дела? 你好，世界。こんにちは世界。안녕하세요. Emoji: 😀🎉👍 and math: ∑ x² ≤ ∞.
def main():\n    return {"key": [1, 2, 3]}  # code\n\tindented\r\nwindows line
"""


def corpus():
    return [s for s in json.loads(CORPUS.read_text(encoding="utf-8")) if isinstance(s, str)]


def train_tokenizer(kind, specials):
    texts = corpus() + TRAIN_TEXT.split("\n") * 3
    if kind.startswith("spm"):
        tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
        tok.normalizer = normalizers.Replace(" ", "\u2581")
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
        byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
        trainer = trainers.BpeTrainer(vocab_size=VOCAB - 8, special_tokens=specials + byte_tokens, show_progress=False,
                                      limit_alphabet=60)
    else:
        tok = Tokenizer(models.BPE(ignore_merges=kind == "llama3"))
        bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=kind not in ("qwen2", "llama3"))
        if kind == "smollm":
            tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), bl])
        elif kind in ("qwen2", "llama3"):
            split = QWEN2_SPLIT if kind == "qwen2" else LLAMA3_SPLIT
            tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), "isolated"), bl])
        else:
            tok.pre_tokenizer = bl
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(vocab_size=VOCAB - 8, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    if kind == "llama3":  # BOS added by the post-processor, as Llama 3's tokenizer.json does it
        bos = tok.token_to_id(specials[0])
        tok.post_processor = processors.TemplateProcessing(single=f"{specials[0]} $A", pair=f"{specials[0]} $A $B",
                                                           special_tokens=[(specials[0], bos)])
    return tok


# family -> (transformers config class, config kwargs, tokenizer kind, specials, tokenizer_config extras)
SMOLLM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PHI3_SPECIALS = ["<unk>", "<s>", "</s>", "<|endoftext|>", "<|end|>", "<|user|>", "<|assistant|>"]
SPM_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
COMMON = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=128, vocab_size=VOCAB)
FAMILIES = {
    "llama": (transformers.LlamaConfig, dict(tie_word_embeddings=True, rms_norm_eps=1e-5, rope_theta=10000.0),
              "smollm", SMOLLM_SPECIALS, dict(bos_token="<|im_start|>", eos_token="<|im_end|>", add_bos_token=False)),
    "qwen2": (transformers.Qwen2Config, dict(tie_word_embeddings=False, rms_norm_eps=1e-6, rope_theta=1000000.0),
              "qwen2", SMOLLM_SPECIALS, dict(eos_token="<|im_end|>", pad_token="<|endoftext|>")),
    "stablelm": (transformers.StableLmConfig, dict(tie_word_embeddings=False, layer_norm_eps=1e-5, partial_rotary_factor=0.5,
                                                   use_qkv_bias=True),
                 "gpt2", SMOLLM_SPECIALS, dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>")),
    "phi3": (transformers.Phi3Config, dict(tie_word_embeddings=False, rms_norm_eps=1e-5, pad_token_id=0, bos_token_id=1,
                                           eos_token_id=2, sliding_window=None),
             "spm-phi3", PHI3_SPECIALS, dict(bos_token="<s>", eos_token="<|endoftext|>", unk_token="<unk>")),
    "gemma": (transformers.GemmaConfig, dict(head_dim=16, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                                             pad_token_id=0, eos_token_id=1, bos_token_id=2),
              "spm", SPM_SPECIALS, dict(bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
                                        add_bos_token=True)),
    "gemma2": (transformers.Gemma2Config, dict(head_dim=16, rms_norm_eps=1e-6, sliding_window=4, query_pre_attn_scalar=16,
                                               attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                                               pad_token_id=0, eos_token_id=1, bos_token_id=2),
               "spm", SPM_SPECIALS, dict(bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", add_bos_token=True)),
    "gemma3": (transformers.Gemma3TextConfig, dict(head_dim=16, rms_norm_eps=1e-6, sliding_window=4, query_pre_attn_scalar=16,
                                                   num_hidden_layers=3, sliding_window_pattern=3,
                                                   layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                                                   rope_theta=1000000.0, rope_local_base_freq=10000.0,
                                                   pad_token_id=0, eos_token_id=1, bos_token_id=2),
               "spm", SPM_SPECIALS, dict(bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", add_bos_token=True)),
}
FAMILIES["llama3"] = (transformers.LlamaConfig, dict(tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=500000.0,
                                                    bos_token_id=0, eos_token_id=1),
                      "llama3", ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
                      dict(bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"))
ARCH_NAMES = {"llama": "LlamaForCausalLM", "llama3": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "stablelm": "StableLmForCausalLM",
              "phi3": "Phi3ForCausalLM", "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM",
              "gemma3": "Gemma3ForCausalLM"}


def make_model(family, seed):
    cls, extra, kind, specials, tc_extra = FAMILIES[family]
    kw = dict(COMMON)
    kw.update(extra)
    cfg = cls(**kw)
    cfg.architectures = [ARCH_NAMES[family]]
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    # Weights large enough that the logits spread over several units (the default init gives ~0).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and p.dim() == 1 and "bias" not in name:
                p.copy_((0.0 if family.startswith("gemma") else 1.0) + 0.2 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * (0.5 if p.dim() == 1 else 1.0 / p.shape[-1] ** 0.5 * 1.5))
    model.eval()
    return model


def save_family(family, tok):
    cls, extra, kind, specials, tc_extra = FAMILIES[family]
    d = OUT / family
    if d.exists():
        shutil.rmtree(d)
    model = make_model(family, seed=list(FAMILIES).index(family) + 1)
    model.save_pretrained(d, safe_serialization=True)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, **tc_extra)
    if "im_end" in tc_extra.get("eos_token", ""):
        fast.chat_template = CHATML
    fast.save_pretrained(d)
    for extra_file in ["generation_config.json", "special_tokens_map.json"]:
        (d / extra_file).unlink(missing_ok=True)
    return model


def hf_logits(model, seq):
    with torch.no_grad():
        return model(torch.tensor([seq])).logits[0].float().numpy()


def llamacpp_logits(gguf, seqs, f32_kv):
    import llama_cpp
    kv = dict(type_k=0, type_v=0) if f32_kv else {}  # GGML_TYPE_F32; llama.cpp's default is F16
    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=64, logits_all=True, verbose=False, n_threads=2, **kv)
    out = []
    for seq in seqs:
        llm.reset()
        llm.eval(seq)
        out.append(np.array(llm.scores[: len(seq)], dtype=np.float32))
    return out


def pick(rows):
    return [[round(float(v), 6) for v in r[::ID_STRIDE]] for r in rows]


def main():
    if not EDGELM.exists():
        sys.exit(f"{EDGELM} not found: build edgelm_cli or set EDGELM_BIN")
    OUT.mkdir(parents=True, exist_ok=True)
    tokenizers_by_kind = {}
    expected = {"id_stride": ID_STRIDE, "families": {}, "tokenizers": {}}
    rng = np.random.default_rng(7)
    tmp = Path(tempfile.mkdtemp())
    for family, (_, _, kind, specials, _) in FAMILIES.items():
        if kind not in tokenizers_by_kind:
            tokenizers_by_kind[kind] = train_tokenizer(kind, specials)
        model = save_family(family, tokenizers_by_kind[kind])
        n_real = tokenizers_by_kind[kind].get_vocab_size()
        seqs = [rng.integers(0, n_real, size=n).tolist() for n in (3, 11)]
        hf = [hf_logits(model, s) for s in seqs]
        gguf = tmp / f"{family}.gguf"
        subprocess.run([str(EDGELM), "convert", str(OUT / family), str(gguf), "--type", "f32"], check=True)
        lc32 = llamacpp_logits(gguf, seqs, f32_kv=True)
        lc = llamacpp_logits(gguf, seqs, f32_kv=False)
        worst32 = max(float(np.abs(a - b).max()) for a, b in zip(hf, lc32))
        worst16 = max(float(np.abs(a - b).max()) for a, b in zip(hf, lc))
        print(f"{family}: transformers vs llama.cpp on the converted GGUF: max |diff| {worst32:.2e} (F32 KV cache), "
              f"{worst16:.2e} (F16 KV cache); logit range "
              f"{min(float(h.min()) for h in hf):.2f}..{max(float(h.max()) for h in hf):.2f}")
        expected["families"][family] = {
            "tokenizer": kind, "sequences": seqs,
            "transformers_vs_llama_cpp_f32_kv": worst32, "transformers_vs_llama_cpp_f16_kv": worst16,
            "transformers": [pick(h) for h in hf], "llama_cpp": [pick(l) for l in lc]}
        if kind not in expected["tokenizers"]:
            fast = transformers.AutoTokenizer.from_pretrained(OUT / family)
            texts = corpus()[:200] + ["<|im_start|>user\nHi there<|im_end|>\n", "<start_of_turn>user\nhi<end_of_turn>", "<|user|>\nhi<|end|>",
                                          "<|begin_of_text|><|start_header_id|>x<|eot_id|>"]
            expected["tokenizers"][kind] = {"family": family, "cases": [
                {"text": t, "ids": fast(t, add_special_tokens=False)["input_ids"]} for t in texts]}

    # export --hf round trip: transformers loads what edgelm writes from the converted llama.
    gguf, hf_dir = tmp / "llama.gguf", tmp / "llama-hf"
    subprocess.run([str(EDGELM), "export", "-m", str(gguf), "--hf", str(hf_dir)], check=True)
    back = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    orig = transformers.AutoModelForCausalLM.from_pretrained(OUT / "llama", dtype=torch.float32).eval()
    worst = 0.0
    for s in expected["families"]["llama"]["sequences"]:
        worst = max(worst, float(np.abs(hf_logits(back, s) - hf_logits(orig, s)).max()))
    tok_back = transformers.AutoTokenizer.from_pretrained(hf_dir)
    tok_orig = transformers.AutoTokenizer.from_pretrained(OUT / "llama")
    same_tok = all(tok_back(t, add_special_tokens=False)["input_ids"] == tok_orig(t, add_special_tokens=False)["input_ids"]
                   for t in corpus())
    print(f"export --hf: transformers loads it; logits max |diff| vs the original checkpoint {worst:.2e}; "
          f"tokenizer identical on the corpus: {same_tok}")
    expected["export_hf_check"] = {"max_abs_logit_diff": worst, "tokenizer_identical": same_tok}
    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, separators=(",", ":")) + "\n",
                                       encoding="utf-8")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
