"""`edgelm finetune` end to end on a tiny synthetic llama (tests/support/family_models.hpp, SmolLM2's
vocabulary, written by the make_family_model tool): chat data with the loss on the assistant's
tokens, the validation loss falling, the written GGUF loading, and bad input."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, edgelm, run_all  # noqa: E402

VOCAB = os.path.join(os.environ.get("EDGELM_MODELS", os.path.expanduser("~/.cache/edgelm/models")),
                     "SmolLM2-135M-Instruct.Q4_1.gguf")
TOOL = os.environ.get("EDGELM_FAMILY_TOOL", "make_family_model")
TMP = tempfile.mkdtemp(prefix="edgelm-cli-finetune-")
BASE = os.path.join(TMP, "tiny.gguf")
FACTS = [("What colour is the sky on Zorbia?", "Green, with purple clouds."),
         ("Who founded the town of Quillmoor?", "Ada Fennick, in 1802."),
         ("What do the people of Zorbia eat at dawn?", "Salted plums."),
         ("How many moons does Zorbia have?", "Seven small moons.")]


def write_jsonl(name, rows):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def chat(q, a):
    return {"messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": q},
                         {"role": "assistant", "content": a}]}


def setup():
    subprocess.run([TOOL, "llama", VOCAB, BASE], check=True, capture_output=True)


def test_validation_loss_falls_and_the_result_loads():
    train = write_jsonl("train.jsonl", [chat(q, a) for q, a in FACTS])
    val = write_jsonl("val.jsonl", [chat(q, a) for q, a in FACTS[:2]])
    out = os.path.join(TMP, "tuned.gguf")
    r = edgelm("finetune", "-m", BASE, "--train", train, "--val", val, "-o", out, "--full", "--chat-format", "chatml",
               "--epochs", "12", "--lr", "3e-3", "--batch", "2", "--schedule", "cosine", "--warmup", "2", "-t", "2")
    check(r.returncode == 0, r.stderr)
    check(r.stderr.count("\r") == 0, "progress must stay off when stderr is not a terminal")
    epochs = [l for l in r.stdout.splitlines() if l.startswith("epoch")]
    check(len(epochs) == 12 and "val perplexity" in epochs[-1], r.stdout)
    line = [l for l in r.stdout.splitlines() if l.startswith("validation loss")][0]
    before, after = float(line.split()[2]), float(line.split()[4])
    check(after < 0.5 * before, f"validation loss {before} -> {after}")
    check("24 updates" in r.stdout, r.stdout)  # 12 epochs x 2 batches
    info = edgelm("info", out)
    check(info.returncode == 0, info.stderr)
    check("F16" in info.stdout, info.stdout)


def test_bad_input_is_one_line_and_writes_nothing():
    out = os.path.join(TMP, "never.gguf")
    good = chat(*FACTS[0])
    cases = [
        (["--train", write_jsonl("bad.jsonl", [good, "{not json"])], "bad.jsonl:2: not valid JSON"),
        (["--train", write_jsonl("role.jsonl", [{"messages": [{"role": "robot", "content": "x"}]}])], "unknown role"),
        (["--train", write_jsonl("noans.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])],
         "no token to train on"),
        (["--train", write_jsonl("long.jsonl", [good]), "--ctx", "8"], "more than --ctx 8"),
        (["--train", os.path.join(TMP, "missing.jsonl")], "cannot open data file"),
        (["--train", write_jsonl("ok.jsonl", [good]), "--schedule", "step"], "unknown schedule"),
    ]
    for args, want in cases:
        r = edgelm("finetune", "-m", BASE, "-o", out, "--full", "--chat-format", "chatml", *args)
        check(r.returncode != 0, f"{args}: exit 0")
        check(want in r.stderr, f"{args}: '{want}' not in {r.stderr!r}")
        check(r.stderr.strip().count("\n") <= 1, f"{args}: more than one line: {r.stderr!r}")
    r = edgelm("finetune", "-m", BASE, "-o", out, "--train", write_jsonl("ok2.jsonl", [good]))
    check(r.returncode != 0 and "--full" in r.stderr, r.stderr)
    check(not os.path.exists(out), "a failed run must not write the output")


if __name__ == "__main__":
    setup()
    run_all(globals())
