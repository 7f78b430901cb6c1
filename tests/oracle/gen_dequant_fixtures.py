#!/usr/bin/env python3
"""Dequantized values of a few real tensor rows, decoded by the `gguf` Python package (an
independent reader of the block layouts). Writes tests/fixtures/model/smollm2_dequant.json."""
import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

model = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
    os.path.join(os.environ.get("EDGELM_MODELS", "~/.cache/edgelm/models"), "SmolLM2-135M-Instruct.Q4_1.gguf"))
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
r = GGUFReader(model)
out = []
for name, rows in [("token_embd.weight", [0, 1, 4242, 49151]), ("blk.0.attn_q.weight", [0, 575]),
                   ("blk.29.ffn_down.weight", [0, 300]), ("blk.3.attn_norm.weight", [0])]:
    t = next(t for t in r.tensors if t.name == name)
    full = dequantize(t.data, t.tensor_type).reshape(-1, int(t.shape[0]))
    for row in rows:
        out.append({"tensor": name, "type": t.tensor_type.name, "row": row,
                    "values": [float(v) for v in full[row][:96]]})
path = os.path.join(root, "tests", "fixtures", "model", "smollm2_dequant.json")
with open(path, "w") as f:
    json.dump(out, f, indent=0)
print("wrote", path)
