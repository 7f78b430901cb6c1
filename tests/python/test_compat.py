"""A script written for llama-cpp-python runs unchanged against edgelm.Llama and gives the same
greedy text as llama-cpp-python on the same GGUF (fixture: tests/oracle/llama_cpp_python_compat.py)."""
import json
import os

import numpy as np

import compat_script
import edgelm

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "llama_cpp_compat.json")


def test_compat_script_matches_llama_cpp_python(smollm2):
    want = json.load(open(FIXTURE))
    got = compat_script.run(edgelm.Llama, smollm2)
    for key in ("completion", "completion_stop", "completion_echo", "completion_stream", "chat", "chat_stream",
                "tokenize", "tokenize_special", "tokenize_plain", "detokenize", "n_ctx", "n_vocab", "token_eos",
                "token_bos"):
        assert got[key] == want[key], key
    ge, we = got["embedding"], want["embedding"]
    assert {k: ge[k] for k in ("object", "n", "usage")} == {k: we[k] for k in ("object", "n", "usage")}
    a, b = np.array(ge["vectors"], dtype=np.float64), np.array(we["vectors"], dtype=np.float64)
    assert a.shape == b.shape
    # The fixture keeps 5 decimals; the hidden states themselves agree to float rounding.
    assert np.abs(a - b).max() < 1e-4, np.abs(a - b).max()
