"""Shared fixtures for the Python package's tests: SmolLM2 from the model cache, one Llama per
module (loading is cheap, but a module's tests share its KV cache the way a user's calls do)."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)


def model_path():
    d = os.environ.get("EDGELM_MODELS", os.path.expanduser("~/.cache/edgelm/models"))
    return os.path.join(d, "smollm2.gguf")


@pytest.fixture(scope="session")
def smollm2():
    p = model_path()
    if not os.path.exists(p):
        pytest.fail(f"{p} is missing: run scripts/fetch-models.sh smollm2")
    return p


@pytest.fixture(scope="module")
def llm(smollm2):
    import edgelm
    return edgelm.Llama(model_path=smollm2, n_ctx=1024, n_threads=2, verbose=False)


@pytest.fixture(scope="session")
def model(smollm2):
    import edgelm
    return edgelm.Model.load(smollm2)
