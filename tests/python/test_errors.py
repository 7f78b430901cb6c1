"""Bad input arrives as Python exceptions with the command line's one-line messages."""
import os
import subprocess

import pytest

import edgelm


def cli_error(*args):
    """The message `edgelm` prints for the same mistake (EDGELM_BIN: the built tool)."""
    b = os.environ.get("EDGELM_BIN")
    if not b:
        return None
    p = subprocess.run([b, *args], capture_output=True, text=True)
    assert p.returncode != 0
    line = p.stderr.strip().splitlines()[-1]
    return line[len("error: "):] if line.startswith("error: ") else line


def test_missing_file(tmp_path):
    missing = str(tmp_path / "nope.gguf")
    with pytest.raises(FileNotFoundError) as e:
        edgelm.Llama(model_path=missing, verbose=False)
    msg = str(e.value)
    assert "nope.gguf" in msg and "\n" not in msg
    want = cli_error("run", "-m", missing, "-p", "x")
    if want is not None:
        assert msg == want


def test_corrupt_file(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 64)
    with pytest.raises(ValueError) as e:
        edgelm.Model.load(str(bad))
    msg = str(e.value)
    assert "bad.gguf" in msg and "\n" not in msg
    want = cli_error("run", "-m", str(bad), "-p", "x")
    if want is not None:
        assert msg == want
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(ValueError):
        edgelm.Llama(model_path=str(tmp_path / "empty.gguf"), verbose=False)


def test_bad_arguments(llm, smollm2, model):
    with pytest.raises(TypeError, match="n_gpu_layerz"):
        edgelm.Llama(model_path=smollm2, n_gpu_layerz=1, verbose=False)
    with pytest.raises(ValueError, match="n_ctx"):
        edgelm.Llama(model_path=smollm2, n_ctx=-5, verbose=False)
    with pytest.raises(ValueError, match="temp"):
        llm("Hi", max_tokens=2, temperature=float("nan"))
    with pytest.raises(ValueError, match="top_p"):
        llm("Hi", max_tokens=2, top_p=0)
    with pytest.raises(ValueError, match="exceed context window"):
        llm("word " * 2000, max_tokens=2)
    with pytest.raises(ValueError, match="response_format"):
        llm.create_chat_completion(messages=[{"role": "user", "content": "x"}], response_format={"type": "xml"})
    with pytest.raises(ValueError):
        llm.create_chat_completion(messages=[{"role": "user", "content": "x"}],
                                   response_format={"type": "json_object", "schema": {"type": "object", "if": {}}})
    with pytest.raises(ValueError, match="outside the vocabulary"):
        llm.detokenize([10**9])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        edgelm.Session(model, n_ctx=16).eval([-1])
    with pytest.raises(ValueError, match="mirostat_mode"):
        llm("Hi", max_tokens=2, mirostat_mode=2)
    with pytest.raises(RuntimeError, match="embedding=True"):
        llm.embed("Hi")
    with pytest.raises(FileNotFoundError):
        edgelm.Llama(model_path=smollm2, lora_path="/nonexistent/adapter.gguf", verbose=False)
    with pytest.raises(TypeError):
        edgelm.Llama(model_path=smollm2, draft_model=3, verbose=False)
    with pytest.raises(ValueError, match="n_ctx"):
        edgelm.Session(model, n_ctx=0)
