#!/usr/bin/env python3
"""Oracle: runs tests/python/compat_script.py with llama-cpp-python and writes its results to
tests/python/fixtures/llama_cpp_compat.json, which tests/python/test_compat.py compares
edgelm.Llama against (greedy text exactly, embeddings within a tolerance).

    python3 tests/oracle/llama_cpp_python_compat.py [MODEL.gguf]   # default: smollm2 in the cache
"""
import json
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "tests", "python"))
import compat_script  # noqa: E402
from llama_cpp import Llama  # noqa: E402
import llama_cpp  # noqa: E402

model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.environ.get("EDGELM_MODELS", os.path.expanduser("~/.cache/edgelm/models")), "smollm2.gguf")
out = compat_script.run(Llama, model)
out["oracle"] = "llama-cpp-python " + llama_cpp.__version__
out["embedding"]["vectors"] = [[round(x, 5) for x in v] for v in out["embedding"]["vectors"]]
dst = os.path.join(root, "tests", "python", "fixtures", "llama_cpp_compat.json")
with open(dst, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", dst)
