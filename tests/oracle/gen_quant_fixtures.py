#!/usr/bin/env python3
"""Known-value fixtures for the quantized block formats, made by two independent implementations:

* llama.cpp's own ggml library (the one inside the `llama-cpp-python` wheel, called through
  ctypes): its reference quantizers (`quantize_row_<type>_ref`), its dequantizers, its activation
  quantizers (Q8_0 / Q8_1 / Q8_K) and its CPU dot products (`ggml_vec_dot_<w>_<x>`);
* the `gguf` Python package (`gguf.quants`): a NumPy reimplementation of the block layouts, which
  dequantizes every type here except Q8_K and quantizes Q5_0 / Q5_1.

The script cross-checks the two (same bytes -> same floats, and for Q5_0/Q5_1 same bytes from the
same floats) before writing anything, so a fixture is only written when both agree.

Writes tests/fixtures/quant/<type>.json, one per type:
  {"type", "block_size", "block_bytes", "source": {...},
   "cases": [{"name", "input": [floats], "bytes": hex (llama.cpp quantized), "dequant": [floats]}],
   "bulk": {"n", "seed", "row_fnv1a32": hash of bulk_row(n, seed) quantized,
            "block_fnv1a32": [hash of each of its first 64 blocks]},
   "dot": {"vec_dot_type", "activations": [floats], "act_bytes": hex, "value": float}}
Floats are written with 9 significant digits, which round-trips float32 exactly.

  python3 tests/oracle/gen_quant_fixtures.py
"""
import ctypes
import glob
import json
import os
import sys

import numpy as np
import gguf
from gguf.quants import dequantize as gguf_dequantize, quantize as gguf_quantize
from gguf import GGMLQuantizationType as QT
import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "quant")
LIBDIR = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")

base = ctypes.CDLL(glob.glob(os.path.join(LIBDIR, "libggml-base.so*"))[0], mode=ctypes.RTLD_GLOBAL)
cpu = ctypes.CDLL(glob.glob(os.path.join(LIBDIR, "libggml-cpu.so*"))[0], mode=ctypes.RTLD_GLOBAL)
cpu.ggml_cpu_init()

# type name -> (block elements, block bytes, vec_dot_type, gguf can quantize)
TYPES = {
    "Q5_0": (32, 22, "Q8_0", True),
    "Q5_1": (32, 24, "Q8_1", True),
    "Q2_K": (256, 84, "Q8_K", False),
    "Q3_K": (256, 110, "Q8_K", False),
    "Q4_K": (256, 144, "Q8_K", False),
    "Q5_K": (256, 176, "Q8_K", False),
    "Q6_K": (256, 210, "Q8_K", False),
    "Q8_K": (256, 292, None, False),
}
# 1024 super-blocks: enough that the rarely winning ends of the quantizers' searches are reached.
BULK_N, BULK_SEED, BULK_BLOCKS_LISTED = 262144, 12345, 64
ACT = {"Q8_0": (32, 34), "Q8_1": (32, 36), "Q8_K": (256, 292)}


def fptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def llama_quantize(tname, x):
    bs, bb = (TYPES[tname][:2] if tname in TYPES else ACT[tname])
    out = np.zeros(len(x) // bs * bb, dtype=np.uint8)
    fn = getattr(base, f"quantize_row_{tname.lower().replace('_k', '_K')}_ref")
    fn.restype = None
    fn(fptr(x), fptr(out), ctypes.c_int64(len(x)))
    return out


def llama_dequantize(tname, q, n):
    y = np.zeros(n, dtype=np.float32)
    fn = getattr(base, f"dequantize_row_{tname.lower().replace('_k', '_K')}")
    fn.restype = None
    fn(fptr(q), fptr(y), ctypes.c_int64(n))
    return y


def llama_vec_dot(wname, xname, n, wq, xq):
    s = np.zeros(1, dtype=np.float32)
    fn = getattr(cpu, f"ggml_vec_dot_{wname.lower().replace('_k', '_K')}_{xname.lower().replace('_k', '_K')}")
    fn.restype = None
    fn(ctypes.c_int(n), fptr(s), ctypes.c_size_t(0), fptr(wq), ctypes.c_size_t(0), fptr(xq),
       ctypes.c_size_t(0), ctypes.c_int(1))
    return float(s[0])


def cases_for(bs):
    """Inputs that reach the interesting paths: plain normal rows, all-positive rows (the min is
    clamped to 0), and a row of special sub-blocks (zeros, tiny values, an outlier, all negative,
    constants)."""
    rng = np.random.default_rng(20240611)
    n = 512
    out = [("normal", rng.standard_normal(n).astype(np.float32) * np.float32(0.05)),
           ("positive", (rng.random(n) * 3 + 0.5).astype(np.float32))]
    special = rng.standard_normal(256).astype(np.float32)
    special[0:16] = 0                                   # an all-zero sub-block
    special[16:32] *= np.float32(1e-8)                  # tiny values
    special[40] = 25.0                                  # an outlier
    special[64:96] = -np.abs(special[64:96]) - 1        # all negative
    special[96:128] = 0.75                              # constant
    special[128:160] = rng.standard_normal(32).astype(np.float32) * np.float32(1e3)  # large
    special[160:192] = np.linspace(-1, 1, 32, dtype=np.float32)                        # ramp
    out.append(("special", special))
    out.append(("zeros", np.zeros(256, dtype=np.float32)))
    return out


def bulk_row(n, seed):
    """A long row both this script and the C++ test generate bit for bit without storing it:
    a 32-bit LCG (x -> 1664525 x + 1013904223) gives, per element, a 24-bit uniform in [-1, 1)
    and a power of two 2^(k - 4), k in 0..7. In odd-numbered runs of 256 elements k is ignored
    (plain uniform values, no outliers); in even ones magnitudes vary within every block. Every
    value is exact in float32."""
    state = seed & 0xFFFFFFFF
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        u = ((state >> 8) - (1 << 23)) / float(1 << 23)
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        k = state >> 29 if (i // 256) % 2 == 0 else 4
        out[i] = np.float32(u * 2.0 ** (k - 4))
    return out


def fnv1a32(b):
    h = 0x811C9DC5
    for c in b:
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return h


def fmt(v):
    return float("%.9g" % float(v))


def check_same(a, b, what):
    if not np.array_equal(a.view(np.uint32), b.view(np.uint32)):
        bad = np.nonzero(a.view(np.uint32) != b.view(np.uint32))[0]
        sys.exit(f"oracles disagree on {what}: first index {bad[0]}: {a[bad[0]]} vs {b[bad[0]]}")


def main():
    os.makedirs(OUT, exist_ok=True)
    for tname, (bs, bb, vdt, gguf_quant) in TYPES.items():
        cases = []
        for cname, x in cases_for(bs):
            x = np.ascontiguousarray(x, dtype=np.float32)
            q = llama_quantize(tname, x)
            assert q.size == len(x) // bs * bb
            y = llama_dequantize(tname, q, len(x))
            if tname != "Q8_K":  # gguf has no Q8_K
                y2 = gguf_dequantize(q, QT[tname]).reshape(-1).astype(np.float32)
                check_same(y, y2, f"{tname} {cname} dequantize")
            if gguf_quant:
                q2 = gguf_quantize(x.reshape(1, -1), QT[tname]).reshape(-1)
                if not np.array_equal(q, q2):
                    sys.exit(f"oracles disagree on {tname} {cname} quantize")
            cases.append({"name": cname, "input": [fmt(v) for v in x], "bytes": q.tobytes().hex(),
                          "dequant": [fmt(v) for v in y]})
        doc = {"type": tname, "block_size": bs, "block_bytes": bb,
               "source": {"llama_cpp_python": llama_cpp.__version__,
                          "gguf": getattr(gguf, "__version__", "unknown"),
                          "quantize": f"ggml quantize_row_{tname}_ref" +
                                      (" (== gguf.quants.quantize)" if gguf_quant else ""),
                          "dequant": "ggml dequantize_row" + ("" if tname == "Q8_K" else " (== gguf.quants.dequantize)")},
               "cases": cases}
        # A long generated row, compared through 32-bit FNV-1a hashes of the quantized bytes (the
        # whole row, and each of the first blocks to locate a difference): reaches far more of
        # the quantizers' search paths than the cases above.
        x = bulk_row(BULK_N, BULK_SEED)
        q = llama_quantize(tname, x)
        doc["bulk"] = {"n": BULK_N, "seed": BULK_SEED, "row_fnv1a32": "%08x" % fnv1a32(q.tobytes()),
                       "block_fnv1a32": ["%08x" % fnv1a32(q[i:i + bb].tobytes())
                                         for i in range(0, BULK_BLOCKS_LISTED * bb, bb)]}
        if vdt:
            rng = np.random.default_rng(7)
            w = np.frombuffer(bytes.fromhex(cases[0]["bytes"]), dtype=np.uint8)
            n = len(cases[0]["input"])
            a = rng.standard_normal(n).astype(np.float32)
            aq = llama_quantize(vdt, a)
            doc["dot"] = {"case": cases[0]["name"], "vec_dot_type": vdt,
                          "activations": [fmt(v) for v in a], "act_bytes": aq.tobytes().hex(),
                          "value": fmt(llama_vec_dot(tname, vdt, n, w, aq))}
        path = os.path.join(OUT, f"{tname}.json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
