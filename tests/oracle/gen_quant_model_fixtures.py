#!/usr/bin/env python3
"""Whole-model quantization fixtures for SmolLM2-135M (requantized from its Q4_1 file), made by
llama.cpp itself, for tests/quant/test_quantize_model.cpp:

* for every file type edgelm supports, llama.cpp's `llama-quantize --allow-requantize` output:
  general.file_type and, per tensor, its type and the CRC-32 of its bytes;
* the same with an importance matrix (a synthetic one, see synthetic_importance(), that the C++
  test rebuilds bit for bit) for the types whose quantizers use it;
* `llama-perplexity` on the fixed text (tests/fixtures/text/essays.txt) at -c 128, 3 chunks, for
  several of llama.cpp's quantized files;
* llama-cpp-python's greedy continuation (and its top-2 margins) on those files.

Because the test first proves that edgelm's file is byte-identical to llama.cpp's (the hashes),
the perplexity and greedy fixtures then hold for edgelm's own output.

  LLAMA_CPP_BUILD=~/.cache/edgelm/llamacpp/build-0.3.36 python3 tests/oracle/gen_quant_model_fixtures.py
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import gguf
import llama_cpp
from llama_cpp import Llama

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "quant", "smollm2_files.json")
TEXT = os.path.join(ROOT, "tests", "fixtures", "text", "essays.txt")
MODEL = os.path.expanduser(os.path.join(os.environ.get("EDGELM_MODELS", "~/.cache/edgelm/models"),
                                        "SmolLM2-135M-Instruct.Q4_1.gguf"))
BUILD = os.path.expanduser(os.environ.get("LLAMA_CPP_BUILD", "~/.cache/edgelm/llamacpp/build-0.3.36"))

TYPES = ["F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q4_0", "Q4_1", "Q3_K_M", "Q2_K"]
IMATRIX_TYPES = ["Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q4_0", "Q4_1", "Q3_K_M", "Q2_K"]
PPL_TYPES = ["F16", "Q8_0", "Q4_0", "Q4_K_M"]
PPL_CTX, PPL_CHUNKS = 128, 3
GREEDY_TYPES = ["Q8_0", "Q4_K_M", "Q3_K_M"]
PROMPTS = ["The lighthouse keeper climbed the stairs and", "Bread is made from four things:",
           "def add(a, b):\n    return"]
N_GEN = 24
IMATRIX_LAYERS = 2  # synthetic importance for blocks 0 and 1 only (the rest quantize without)


def tensor_hash(data):
    """CRC-32 (zlib's polynomial) of the tensor's bytes, as 8 hex digits."""
    return "%08x" % zlib.crc32(np.asarray(data).view(np.uint8).tobytes())


def synthetic_importance(n):
    """Deterministic, exactly representable importance values in [0.25, 4.0]."""
    j = np.arange(n, dtype=np.int64)
    return (0.25 + ((j * 7919) % 61) / 16.0).astype(np.float32)


def write_imatrix(path, model):
    r = gguf.GGUFReader(model)
    w = gguf.GGUFWriter(path, arch="")
    w.add_string("general.type", "imatrix")
    w.add_array("imatrix.datasets", ["synthetic"])
    w.add_uint32("imatrix.chunk_count", 1)
    w.add_uint32("imatrix.chunk_size", 512)
    for t in r.tensors:
        m = re.match(r"blk\.(\d+)\.", t.name)
        if not m or int(m.group(1)) >= IMATRIX_LAYERS or len(t.shape) < 2:
            continue
        n = int(t.shape[0])
        w.add_tensor(t.name + ".in_sum2", synthetic_importance(n).reshape(1, n))
        w.add_tensor(t.name + ".counts", np.ones((1, 1), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def describe(path):
    r = gguf.GGUFReader(path)
    ft = int(r.fields["general.file_type"].parts[-1][0])
    tensors = {t.name: [t.tensor_type.name, tensor_hash(t.data)] for t in r.tensors}
    return {"file_type": ft, "tensors": tensors}


def quantize(src, dst, ftype, imatrix=None):
    cmd = [os.path.join(BUILD, "bin", "llama-quantize"), "--allow-requantize"]
    if imatrix:
        cmd += ["--imatrix", imatrix]
    subprocess.run(cmd + [src, dst, ftype, "2"], check=True, capture_output=True)


def perplexity(path):
    out = subprocess.run([os.path.join(BUILD, "bin", "llama-perplexity"), "-m", path, "-f", TEXT, "-c", str(PPL_CTX),
                          "--chunks", str(PPL_CHUNKS), "-t", "2"], check=True, capture_output=True, text=True)
    text = out.stdout + out.stderr
    running = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+),", text)]
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", text)
    return {"ctx": PPL_CTX, "chunks": PPL_CHUNKS, "running": running, "ppl": float(m.group(1)),
            "stderr": float(m.group(2))}


def greedy(path):
    llm = Llama(model_path=path, n_ctx=256, n_batch=256, n_threads=2, logits_all=True, verbose=False, seed=0,
                flash_attn=False)
    cases = []
    for p in PROMPTS:
        toks = llm.tokenize(p.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(toks)
        out, margins = [], []
        for _ in range(N_GEN):
            row = np.array(llm.scores[llm.n_tokens - 1])
            nxt = int(np.argmax(row))
            top2 = np.partition(row, -2)[-2:]
            out.append(nxt)
            margins.append(float(top2[1] - top2[0]))
            llm.eval([nxt])
        cases.append({"prompt": p, "tokens": [int(t) for t in toks], "greedy": out, "margins": margins})
    del llm
    return cases


def main():
    doc = {"model": os.path.basename(MODEL), "source": {"llama_cpp_python": llama_cpp.__version__,
                                                        "tools": "llama-quantize, llama-perplexity from the same tree"},
           "imatrix": {"layers": IMATRIX_LAYERS, "formula": "0.25 + ((j * 7919) % 61) / 16, counts 1"},
           "types": {}, "imatrix_types": {}, "perplexity": {}, "greedy": {}}
    with tempfile.TemporaryDirectory() as d:
        imat = os.path.join(d, "synthetic.imatrix.gguf")
        write_imatrix(imat, MODEL)
        for t in TYPES:
            p = os.path.join(d, f"{t}.gguf")
            quantize(MODEL, p, t)
            doc["types"][t] = describe(p)
            if t in PPL_TYPES:
                doc["perplexity"][t] = perplexity(p)
            if t in GREEDY_TYPES:
                doc["greedy"][t] = greedy(p)
            print(t, doc["perplexity"].get(t, {}).get("ppl", ""), file=sys.stderr)
            os.remove(p)
        for t in IMATRIX_TYPES:
            p = os.path.join(d, f"{t}.imatrix.gguf")
            quantize(MODEL, p, t, imat)
            doc["imatrix_types"][t] = describe(p)
            os.remove(p)
            print(t, "imatrix", file=sys.stderr)
    with open(OUT + ".tmp", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    os.replace(OUT + ".tmp", OUT)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
