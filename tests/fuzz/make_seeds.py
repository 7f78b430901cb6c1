"""Writes the binary seed inputs of the fuzz corpora (tests/fuzz/corpus/): small GGUF files for
fuzz_gguf, LoRA adapters for fuzz_lora (SmolLM2's shapes) and safetensors files for
fuzz_safetensors (written directly: an 8-byte header length, a JSON header, the tensor bytes). Needs the `gguf` package (pip).
The text seeds are committed as they are."""
import json
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

HERE = os.path.dirname(os.path.abspath(__file__))


def write(path, arch, fill):
    w = GGUFWriter(path, arch)
    fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def model_like(w):
    w.add_name("tiny")
    w.add_uint32("tiny.context_length", 64)
    w.add_int64("tiny.big", -5)
    w.add_float32("tiny.eps", 1e-5)
    w.add_bool("tiny.flag", True)
    w.add_array("tokenizer.ggml.tokens", ["a", "b", "ab", "<s>"])
    w.add_array("tokenizer.ggml.scores", [0.0, -1.0, -2.0, 0.5])
    w.add_array("tokenizer.ggml.token_type", [1, 1, 1, 3])
    w.add_string("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}")
    w.add_tensor("f32", np.arange(8, dtype=np.float32).reshape(2, 4))
    w.add_tensor("f16", np.ones((1, 32), dtype=np.float16))
    q = np.zeros((2, 18), dtype=np.uint8)  # two Q4_0 blocks of 32 weights
    w.add_tensor("q4_0", q, raw_dtype=GGMLQuantizationType.Q4_0)
    q8 = np.zeros((1, 34), dtype=np.uint8)
    w.add_tensor("q8_0", q8, raw_dtype=GGMLQuantizationType.Q8_0)


def metadata_only(w):
    w.add_string("general.type", "model")
    w.add_array("nested.strings", ["", "x" * 40, "é"])


def lora(targets, dtype=np.float32):
    def fill(w):
        w.add_string("general.type", "adapter")
        w.add_string("adapter.type", "lora")
        w.add_float32("adapter.lora.alpha", 2.0)
        for name, n_in, n_out in targets:
            w.add_tensor(name + ".lora_a", np.full((1, n_in), 0.01, dtype=dtype))   # ne = [n_in, rank 1]
            w.add_tensor(name + ".lora_b", np.full((n_out, 1), 0.02, dtype=dtype))  # ne = [rank 1, n_out]
    return fill


def safetensors(path, tensors, metadata=None):
    """tensors: (name, numpy array); the dtype names are safetensors' own."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32"}
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, a in tensors:
        raw = a.tobytes()
        header[name] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    gguf_dir = os.path.join(HERE, "corpus", "gguf")
    lora_dir = os.path.join(HERE, "corpus", "lora")
    os.makedirs(gguf_dir, exist_ok=True)
    os.makedirs(lora_dir, exist_ok=True)
    write(os.path.join(gguf_dir, "seed-model-like"), "llama", model_like)
    write(os.path.join(gguf_dir, "seed-metadata-only"), "llama", metadata_only)
    write(os.path.join(lora_dir, "seed-attn-q"), "llama", lora([("blk.0.attn_q.weight", 576, 576)]))
    write(os.path.join(lora_dir, "seed-two-f16"), "llama",
          lora([("blk.1.attn_v.weight", 576, 192), ("blk.0.ffn_down.weight", 1536, 576)], np.float16))
    write(os.path.join(lora_dir, "seed-unknown-target"), "llama", lora([("blk.99.attn_q.weight", 8, 8)]))
    st_dir = os.path.join(HERE, "corpus", "safetensors")
    os.makedirs(st_dir, exist_ok=True)
    safetensors(os.path.join(st_dir, "seed-two-float"), [
        ("model.embed_tokens.weight", np.arange(32, dtype=np.float32).reshape(8, 4)),
        ("model.norm.weight", np.ones(4, dtype=np.float16))], {"format": "pt"})
    bf16 = (np.arange(6, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    safetensors(os.path.join(st_dir, "seed-scalar"), [("w", np.zeros((), dtype=np.float32))])
    header = json.dumps({"lm_head.weight": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}}).encode()
    with open(os.path.join(st_dir, "seed-bf16"), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + bf16.tobytes())
    safetensors(os.path.join(st_dir, "seed-empty"), [])


if __name__ == "__main__":
    main()
