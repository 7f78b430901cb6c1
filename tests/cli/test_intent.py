"""`edgelm train-classifier`, `classify` and `car` end to end on a small CLINC150 slice
(tests/intent/data: 8 intents + oos): training output, reproducibility (byte-identical heads,
with and without the feature cache), accuracy on held-back lines, the car demo on a scripted
conversation, and clear errors for bad input. About 40-60 s on 2 cores."""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, check, edgelm, run_all  # noqa: E402

MODEL = os.path.join(os.environ.get("EDGELM_MODELS", os.path.expanduser("~/.cache/edgelm/models")),
                     "SmolLM2-135M-Instruct.Q4_1.gguf")
DATA = os.path.join(SRC, "tests", "intent", "data")
TRAIN, VAL, HELD = (os.path.join(DATA, f) for f in ("train.jsonl", "val.jsonl", "heldout.jsonl"))
TMP = tempfile.mkdtemp(prefix="edgelm-cli-intent-")
CACHE = os.path.join(TMP, "cache")
HEAD = os.path.join(TMP, "mean.gguf")


def train(out, *extra, cache=CACHE, seed=7, epochs=12, data=TRAIN):
    args = ["train-classifier", "-m", MODEL, "--train", data, "--val", VAL, "-o", out, "--epochs", str(epochs),
            "--seed", str(seed), "-t", "2"]
    args += ["--no-cache"] if cache is None else ["--cache-dir", cache]
    return edgelm(*args, *extra)


def held_back():
    rows = [json.loads(l) for l in open(HELD)]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def accuracy(head, model=MODEL):
    texts, labels = held_back()
    r = edgelm("classify", "-m", model, "--head", head, "-", "-t", "2", input="\n".join(texts) + "\n")
    check(r.returncode == 0, r.stderr)
    preds = [l.split("\t")[0] for l in r.stdout.splitlines()]
    check(len(preds) == len(texts), r.stdout)
    return sum(p == l for p, l in zip(preds, labels)) / len(labels)


def test_train_prints_epochs_and_writes_head():
    r = train(HEAD)
    check(r.returncode == 0, r.stderr)
    epochs = [l for l in r.stdout.splitlines() if l.startswith("epoch")]
    check(len(epochs) >= 3, r.stdout)
    for want in ["train loss", "val loss", "val acc"]:
        check(want in epochs[0], epochs[0])
    check("*best (saved)" in epochs[0], epochs[0])
    check("in-scope accuracy" in r.stdout and "oos recall" in r.stdout, r.stdout)
    check(r.stderr.count("\r") == 0, "progress must stay off when stderr is not a terminal")
    check(os.path.exists(HEAD), "no head file")
    check(not [f for f in os.listdir(TMP) if ".tmp" in f], os.listdir(TMP))
    check(os.listdir(CACHE), "features were not cached")


def test_held_back_lines_well_above_chance():
    acc = accuracy(HEAD)  # 9 classes: chance is 11 %
    check(acc >= 0.75, f"held-back accuracy {acc:.2f}")


def test_same_seed_same_bytes_with_and_without_cache():
    again = os.path.join(TMP, "again.gguf")
    r = train(again)
    check(r.returncode == 0, r.stderr)
    check("from cache" in r.stdout, r.stdout)
    check(open(again, "rb").read() == open(HEAD, "rb").read(), "same seed, different head (cached features)")
    fresh = os.path.join(TMP, "fresh.gguf")
    r = train(fresh, cache=None)
    check(r.returncode == 0, r.stderr)
    check(open(fresh, "rb").read() == open(HEAD, "rb").read(), "same seed, different head (fresh features)")
    other = os.path.join(TMP, "other.gguf")
    r = train(other, seed=8)
    check(r.returncode == 0, r.stderr)
    check(open(other, "rb").read() != open(HEAD, "rb").read(), "another seed gave the same head")


def test_attention_pooling_mlp_from_cache():
    head = os.path.join(TMP, "attn.gguf")
    r = train(head, "--pooling", "attention", "--hidden", "64")
    check(r.returncode == 0, r.stderr)
    check("from cache" in r.stdout, r.stdout)
    acc = accuracy(head)
    check(acc >= 0.75, f"held-back accuracy {acc:.2f}")


def test_early_exit_is_recorded_in_the_head():
    # The default head reads the states after block 6 of 30 (printed, and kept in the head, so
    # classify follows it with the full backbone); --layers 0 trains on all 30 (on the 90
    # validation lines, so that the 30-block features are computed for 90 texts, not 450).
    r = train(os.path.join(TMP, "unused.gguf"), epochs=1)  # features from the cache
    check(r.returncode == 0, r.stderr)
    check("backbone: first 6 of 30 blocks" in r.stdout, r.stdout)
    head = os.path.join(TMP, "all.gguf")
    r = train(head, "--layers", "0", data=VAL)
    check(r.returncode == 0, r.stderr)
    check("backbone: all 30 blocks" in r.stdout, r.stdout)
    check(open(head, "rb").read() != open(HEAD, "rb").read(), "30-block and 6-block heads are the same")
    acc = accuracy(head)
    check(acc >= 0.6, f"held-back accuracy {acc:.2f} with all 30 blocks")


def test_lora_head_carries_its_adapters():
    # --lora: the top 2 of the 6 blocks train as rank-4 adapters over the quantized backbone;
    # the head file carries them, `info` says so, and classify applies them.
    head = os.path.join(TMP, "lora.gguf")
    r = train(head, "--lora", "4", "--unfreeze", "2", "--unfreeze-epochs", "1")
    check(r.returncode == 0, r.stderr)
    check("fine-tuning 2 blocks with LoRA rank 4" in r.stdout, r.stdout)
    info = edgelm("info", head)
    check(info.returncode == 0 and "blocks 4 and up: LoRA adapters (28 tensors)" in info.stdout, info.stdout + info.stderr)
    acc = accuracy(head)
    check(acc >= 0.6, f"held-back accuracy {acc:.2f} with LoRA")
    r = train(os.path.join(TMP, "never.gguf"), "--lora", "4", "--pooling", "attention")
    check(r.returncode != 0 and "--pooling mean or last" in r.stderr, r.stderr)


def test_classify_json_and_top_k():
    r = edgelm("classify", "-m", MODEL, "--head", HEAD, "--json", "--top", "3", "play some jazz music please")
    check(r.returncode == 0, r.stderr)
    j = json.loads(r.stdout)
    check(j["intent"] == "play_music", r.stdout)
    check(len(j["top"]) == 3 and j["top"][0]["prob"] >= j["top"][1]["prob"] >= j["top"][2]["prob"], r.stdout)
    check(abs(j["confidence"] - j["top"][0]["prob"]) < 1e-6, r.stdout)
    r = edgelm("classify", "-m", MODEL, "--head", HEAD, "--top", "2", "call my brother")
    check(r.returncode == 0 and r.stdout.startswith("make_call\t") and r.stdout.count(":") == 2, r.stdout)


def test_car_demo_scripted_conversation():
    script = "\n".join([
        "give me directions to the airport",
        "set the temperature to 72 please",
        "play some jazz",
        "turn the volume up",
        "call mom",
        "who won the world series in 1998",
        "",
    ])
    r = edgelm("car", "-m", MODEL, "--head", HEAD, input=script)
    check(r.returncode == 0, r.stderr)
    out = r.stdout
    check("state navigation.destination: (none) -> the airport" in out, out)
    check("state climate.temperature: 70 F -> 72 F" in out, out)
    check("state media.status: off -> playing" in out and "-> jazz" in out, out)
    check("state media.volume: 5 -> 7" in out, out)
    check("state phone.call: (none) -> mom" in out, out)
    check("Sorry, I can't help with that" in out, out)
    final = out.strip().splitlines()[-1]
    check(final.startswith("final state: destination=the airport climate=on 72F media=playing track=jazz volume=7 call=mom"),
          final)


def test_bad_input_clear_errors():
    r = edgelm("classify", "-m", MODEL, "--head", HEAD, "   ")
    check(r.returncode != 0 and "the text is empty" in r.stderr and r.stderr.count("\n") == 1, r.stderr)
    r = edgelm("classify", "-m", MODEL, "--head", HEAD, "-", input="play jazz\n\ncall mom\n")
    check(r.returncode != 0 and "stdin line 2: the text is empty" in r.stderr, r.stderr)
    # A different backbone: the same model with extra bytes appended has another SHA-256.
    other = os.path.join(TMP, "other-backbone.gguf")
    shutil.copyfile(MODEL, other)
    with open(other, "ab") as f:
        f.write(b"\0" * 64)
    r = edgelm("classify", "-m", other, "--head", HEAD, "play jazz")
    check(r.returncode != 0 and "trained on backbone" in r.stderr and "retrain" in r.stderr, r.stderr)
    os.remove(other)
    r = edgelm("classify", "-m", MODEL, "--head", MODEL, "play jazz")
    check(r.returncode != 0 and "not an edgelm classifier head" in r.stderr, r.stderr)
    bad = os.path.join(TMP, "bad.jsonl")
    with open(bad, "w") as f:
        f.write('{"text": "play jazz", "label": "play_music"}\n{"text": "call mom", "label": "make_call"}\n{"text": oops}\n')
    r = edgelm("train-classifier", "-m", MODEL, "--train", bad, "--val", VAL, "-o", os.path.join(TMP, "x.gguf"))
    check(r.returncode != 0 and f"{bad}:3: malformed JSON" in r.stderr, r.stderr)
    check(not os.path.exists(os.path.join(TMP, "x.gguf")), "a head was written from bad data")
    r = edgelm("train-classifier", "-m", MODEL, "--train", TRAIN, "--val", VAL, "-o", os.path.join(TMP, "x.gguf"),
               "--pooling", "max")
    check(r.returncode != 0 and "unknown pooling 'max'" in r.stderr, r.stderr)


if __name__ == "__main__":
    try:
        run_all(globals())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
