"""Training from Python: finetune, distill and the intent classifier run the command line's code
with the same options (the files they write are identical byte for byte), call back per step,
and stop on an exception raised in a callback without writing their output."""
import filecmp
import json
import os
import subprocess

import pytest

import edgelm

HERE = os.path.dirname(os.path.abspath(__file__))
INTENT = os.path.join(os.path.dirname(HERE), "intent", "data")

CHAT = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"},
                  {"role": "assistant", "content": "Paris is the capital of France."}]},
    {"messages": [{"role": "user", "content": "Two plus two?"}, {"role": "assistant", "content": "Four."}]},
    {"text": "The quick brown fox jumps over the lazy dog."},
    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]},
]


@pytest.fixture(scope="module")
def cli():
    b = os.environ.get("EDGELM_BIN")
    if not b:
        pytest.fail("EDGELM_BIN (the built edgelm tool) is not set: run this test through ctest")

    def run(*args, input=""):
        return subprocess.run([b, *args], capture_output=True, text=True, input=input)
    return run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    p = tmp_path_factory.mktemp("data") / "chat.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in CHAT))
    return str(p)


def test_lora_finetune_writes_what_the_cli_writes(cli, smollm2, model, data, tmp_path):
    py_out, cli_out = str(tmp_path / "py.gguf"), str(tmp_path / "cli.gguf")
    steps, epochs = [], []
    r = edgelm.finetune(model, data, py_out, val=data, lora_rank=2, lora_targets=("q", "v"), epochs=2, batch=2,
                        n_ctx=64, lr=1e-3, n_threads=1, on_step=lambda d, t, loss: steps.append((d, t, loss)),
                        on_epoch=epochs.append)
    p = cli("finetune", "-m", smollm2, "--train", data, "--val", data, "-o", cli_out, "--lora-rank", "2",
            "--lora-targets", "q,v", "--epochs", "2", "--batch", "2", "--ctx", "64", "--lr", "1e-3", "-t", "1")
    assert p.returncode == 0, p.stderr
    assert filecmp.cmp(py_out, cli_out, shallow=False)
    assert r["updates"] == 4 and [s[0] for s in steps] == [1, 2, 3, 4] and all(s[1] == 4 for s in steps)
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs == r["epochs"]
    assert r["epochs"][-1]["val_loss"] < r["initial_val_loss"]
    # the adapter serves: the session applies it
    s = edgelm.Session(model, n_ctx=64, lora=[(py_out, 1.0)])
    assert s is not None


def test_an_exception_in_a_callback_stops_the_run(model, data, tmp_path):
    out = tmp_path / "never.gguf"

    def stop(done, total, loss):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        edgelm.finetune(model, data, str(out), lora_rank=2, batch=1, n_ctx=64, on_step=stop)
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if f.startswith("never")], os.listdir(tmp_path)


def test_bad_arguments(model, data, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        edgelm.finetune(model, str(tmp_path / "nope.jsonl"), str(tmp_path / "x.gguf"), lora_rank=2)
    with pytest.raises(TypeError, match="unexpected option 'bogus'"):
        edgelm._edgelm.finetune(model, data, str(tmp_path / "x.gguf"), None, {"bogus": 1})
    with pytest.raises(TypeError, match="epochs"):
        edgelm._edgelm.finetune(model, data, str(tmp_path / "x.gguf"), None, {"epochs": "two"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [}\n')
    with pytest.raises(ValueError, match="bad.jsonl"):
        edgelm.finetune(model, str(bad), str(tmp_path / "x.gguf"), lora_rank=2)
    with pytest.raises(edgelm.Error):  # neither full nor LoRA options that finetune accepts
        edgelm.finetune(model, data, str(tmp_path / "x.gguf"), lora_rank=2, batch=0)


def test_distill_writes_what_the_cli_writes(cli, smollm2, model, data, tmp_path):
    # untrained: the teacher without its 27 least important blocks
    py0, cli0 = str(tmp_path / "py0.gguf"), str(tmp_path / "cli0.gguf")
    r0 = edgelm.distill(model, data, py0, prune_layers=27, epochs=0, n_ctx=64, n_threads=1)
    p = cli("distill", "-t", smollm2, "--train", data, "-o", cli0, "--prune-layers", "27", "--epochs", "0",
            "--ctx", "64", "--threads", "1")
    assert p.returncode == 0, p.stderr
    assert filecmp.cmp(py0, cli0, shallow=False)
    assert not r0["trained"] and r0["student_blocks"] == 3 and len(r0["dropped"]) == 27
    assert len(r0["importance"]) == 30 and r0["importance"][0] == float("inf")
    # one epoch on the distillation loss against the teacher's top-8 words
    py1, cli1 = str(tmp_path / "py1.gguf"), str(tmp_path / "cli1.gguf")
    progress = []
    r1 = edgelm.distill(smollm2, data, py1, prune_layers=27, top_k=8, temperature=2.0, batch=2, n_ctx=64,
                        n_threads=1, on_teacher_progress=lambda d, t: progress.append((d, t)))
    p = cli("distill", "-t", smollm2, "--train", data, "-o", cli1, "--prune-layers", "27", "--kd-top-k", "8",
            "--kd-temperature", "2", "--batch", "2", "--ctx", "64", "--threads", "1")
    assert p.returncode == 0, p.stderr
    assert filecmp.cmp(py1, cli1, shallow=False)
    assert r1["trained"] and r1["updates"] == 2 and progress[-1] == (len(CHAT), len(CHAT))
    assert r1["dropped"] == r0["dropped"]


def test_classifier_trains_and_classifies_as_the_cli_does(cli, smollm2, model, tmp_path):
    train, val, held = (os.path.join(INTENT, f) for f in ("train.jsonl", "val.jsonl", "heldout.jsonl"))
    py_head, cli_head = str(tmp_path / "py.gguf"), str(tmp_path / "cli.gguf")
    epochs = []
    cache = str(tmp_path / "features")  # the command line reads the features Python computed
    r = edgelm.train_classifier(model, train, val, py_head, epochs=4, n_layers=2, n_threads=1, cache_dir=cache,
                                seed=3, on_epoch=epochs.append)
    p = cli("train-classifier", "-m", smollm2, "--train", train, "--val", val, "-o", cli_head, "--epochs", "4",
            "--layers", "2", "-t", "1", "--cache-dir", cache, "--seed", "3")
    assert p.returncode == 0, p.stderr
    assert filecmp.cmp(py_head, cli_head, shallow=False)
    assert [e["epoch"] for e in epochs] == list(range(1, r["epochs"] + 1)) and r["n_train"] == 360

    texts = [json.loads(line)["text"] for line in open(held)][:24]
    c = edgelm.Classifier(model, py_head)
    assert "oos" in c.labels and 0 <= c.oos_threshold <= 1
    one = [c.classify(t, top_k=3) for t in texts]
    assert c.classify_batch(texts, top_k=3) == one
    assert all(len(p["top"]) == 3 and p["top"][0][1] >= p["top"][1][1] for p in one)
    p = cli("classify", "-m", smollm2, "--head", cli_head, "-", "--json", input="\n".join(texts) + "\n")
    assert p.returncode == 0, p.stderr
    want = [json.loads(line) for line in p.stdout.splitlines()]
    assert [w["intent"] for w in want] == [o["intent"] for o in one]
    assert [round(w["confidence"], 4) for w in want] == [round(o["confidence"], 4) for o in one]

    with pytest.raises(ValueError, match="top_k"):
        c.classify("hello", top_k=0)
    with pytest.raises(FileNotFoundError):
        edgelm.Classifier(model, str(tmp_path / "nope.gguf"))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\0" * 20)
    with pytest.raises(ValueError):
        edgelm.Classifier(model, str(junk))
