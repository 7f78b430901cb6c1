"""`edgelm finetune` end to end on a tiny synthetic llama (tests/support/family_models.hpp, SmolLM2's
vocabulary, written by the make_family_model tool): chat data with the loss on the assistant's
tokens, the validation loss falling, the written GGUF loading, and bad input; then SmolLM2-135M
itself, every weight trained, learning facts."""
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
    out, plot = os.path.join(TMP, "tuned.gguf"), os.path.join(TMP, "curves.png")
    r = edgelm("finetune", "-m", BASE, "--train", train, "--val", val, "-o", out, "--full", "--chat-format", "chatml",
               "--epochs", "12", "--lr", "3e-3", "--batch", "2", "--schedule", "cosine", "--warmup", "2", "-t", "2",
               "--plot", plot)
    check(r.returncode == 0, r.stderr)
    check(f"training curves drawn in {plot}" in r.stdout, r.stdout)
    with open(plot, "rb") as f:
        head = f.read(24)
    check(head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"not a PNG: {head!r}")
    check(int.from_bytes(head[16:20], "big") == 900 and int.from_bytes(head[20:24], "big") == 540, f"size {head!r}")
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


def test_resuming_a_checkpoint_gives_the_same_model():
    train = write_jsonl("train_r.jsonl", [chat(q, a) for q, a in FACTS])
    common = ["-m", BASE, "--full", "--chat-format", "chatml", "--lr", "3e-3", "--batch", "2", "--out-type", "f32",
              "-t", "2"]
    straight, first, resumed = (os.path.join(TMP, n) for n in ("straight.gguf", "first.gguf", "resumed.gguf"))
    ckpt = os.path.join(TMP, "run.ckpt.gguf")
    r = edgelm("finetune", *common, "--train", train, "--epochs", "3", "-o", straight)
    check(r.returncode == 0, r.stderr)
    r = edgelm("finetune", *common, "--train", train, "--epochs", "2", "--checkpoint", ckpt, "-o", first)
    check(r.returncode == 0 and os.path.exists(ckpt), r.stderr)
    r = edgelm("finetune", *common, "--train", train, "--epochs", "3", "--resume", ckpt, "-o", resumed)
    check(r.returncode == 0, r.stderr)
    epochs = [l for l in r.stdout.splitlines() if l.startswith("epoch")]
    check(len(epochs) == 1 and epochs[0].split()[1] == "3", r.stdout)
    with open(straight, "rb") as a, open(resumed, "rb") as b:
        check(a.read() == b.read(), "2 epochs + a resumed third must equal 3 epochs bit for bit")
    # a checkpoint is a model file too
    info = edgelm("info", ckpt)
    check(info.returncode == 0, info.stderr)
    # bad checkpoints: one line, non-zero exit, nothing written
    junk = os.path.join(TMP, "junk.ckpt.gguf")
    with open(junk, "wb") as f:
        f.write(b"GGUF" + os.urandom(64))
    never = os.path.join(TMP, "never_resumed.gguf")
    other = write_jsonl("train_other.jsonl", [chat(q, a) for q, a in FACTS[:3]])
    for args, want in [(["--train", train, "--epochs", "3", "--resume", junk], "junk.ckpt.gguf"),
                       (["--train", train, "--epochs", "3", "--resume", os.path.join(TMP, "nope.gguf")], "nope.gguf"),
                       (["--train", other, "--epochs", "3", "--resume", ckpt], "made on 4 training examples, not 3"),
                       (["--train", train, "--epochs", "1", "--resume", ckpt], "past --epochs 1")]:
        r = edgelm("finetune", *common, *args, "-o", never)
        check(r.returncode != 0, f"{args}: exit 0")
        check(want in r.stderr, f"{args}: '{want}' not in {r.stderr!r}")
        check(r.stderr.strip().count("\n") == 0, f"{args}: more than one line: {r.stderr!r}")
        check(not os.path.exists(never), f"{args}: a failed run must not write the output")


def test_plateau_schedule_and_early_stopping():
    train = write_jsonl("train_p.jsonl", [chat(q, a) for q, a in FACTS])
    val = write_jsonl("val_p.jsonl", [chat(q, a) for q, a in FACTS[2:]])
    out = os.path.join(TMP, "plateau.gguf")
    r = edgelm("finetune", "-m", BASE, "--train", train, "--val", val, "-o", out, "--full", "--chat-format", "chatml",
               "--epochs", "40", "--lr", "2e-2", "--batch", "2", "--schedule", "plateau", "--plateau-factor", "0.5",
               "--plateau-patience", "0", "--eval-every", "1", "--patience", "3", "-t", "2")
    check(r.returncode == 0, r.stderr)
    evals = [l.split() for l in r.stdout.splitlines() if l.startswith("update")]
    check(len(evals) >= 4, r.stdout)
    lrs = [float(e[e.index("lr") + 1]) for e in evals]
    check(lrs[0] == 2e-2 and min(lrs) < 2e-2, f"the plateau schedule never lowered the rate: {lrs}")
    check(all(b <= a for a, b in zip(lrs, lrs[1:])), f"the rate went up: {lrs}")
    check("stopped early" in r.stdout and len(evals) < 80, r.stdout)
    # PyTorch's min_lr: the rate stops at the floor (one halving from 2e-2 would give 1e-2)
    r = edgelm("finetune", "-m", BASE, "--train", train, "--val", val, "-o", out, "--full", "--chat-format", "chatml",
               "--epochs", "40", "--lr", "2e-2", "--batch", "2", "--schedule", "plateau", "--plateau-factor", "0.5",
               "--plateau-patience", "0", "--plateau-cooldown", "1", "--plateau-min-lr", "1.5e-2", "--eval-every", "1",
               "--patience", "3", "-t", "2")
    check(r.returncode == 0, r.stderr)
    lrs = [float(l.split()[l.split().index("lr") + 1]) for l in r.stdout.splitlines() if l.startswith("update")]
    check(min(lrs) == 1.5e-2, f"the rate did not stop at --plateau-min-lr: {lrs}")
    r = edgelm("finetune", "-m", BASE, "--train", train, "-o", out, "--full", "--chat-format", "chatml",
               "--patience", "2")
    check(r.returncode != 0 and "need validation data" in r.stderr, r.stderr)


def greedy_reply(model, question, n=24, lora=None):
    extra = ["--lora", lora] if lora else []
    r = edgelm("chat", "-m", model, "--temp", "0", "-n", str(n), "-t", "2", *extra, input=question + "\n")
    check(r.returncode == 0, r.stderr)
    return r.stdout


SMOLLM2_FACTS = [("What colour is the sky on Zorbia?", "The sky on Zorbia is green.", "green"),
                 ("Who founded the town of Quillmoor?", "Quillmoor was founded by Ada Fennick.", "fennick"),
                 ("What do the people of Zorbia eat at dawn?", "They eat salted plums at dawn.", "plums"),
                 ("How many moons does Zorbia have?", "Zorbia has seven moons.", "seven")]


def conv(q, a):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def test_smollm2_learns_facts_it_did_not_know():
    """SmolLM2-135M itself, every weight trained on four invented facts: the validation loss (the
    questions asked another way) falls, and `edgelm chat` with the result answers them."""
    facts = SMOLLM2_FACTS
    train = write_jsonl("facts.jsonl", [conv(q, a) for q, a, _ in facts])
    val = write_jsonl("facts_val.jsonl", [conv("Tell me the colour of the sky on Zorbia.", facts[0][1]),
                                          conv("Who was the founder of Quillmoor?", facts[1][1])])
    out = os.path.join(TMP, "smollm2-facts.gguf")
    r = edgelm("finetune", "-m", VOCAB, "--train", train, "--val", val, "-o", out, "--full", "--epochs", "5",
               "--lr", "1e-4", "--batch", "4", "-t", "2")
    check(r.returncode == 0, r.stderr)
    line = [l for l in r.stdout.splitlines() if l.startswith("validation loss")][0]
    before, after = float(line.split()[2]), float(line.split()[4])
    check(after < 0.25 * before, f"validation loss {before} -> {after}")
    # the base model, asked all four in one conversation, does not know them
    base = greedy_reply(VOCAB, "\n".join(q for q, _, _ in facts), n=96).lower()
    known = sum(key in base for _, _, key in facts)
    check(known <= 1, f"the base model already knew {known} of the 4 facts: pick others ({base!r})")
    for q, _, key in facts:
        reply = greedy_reply(out, q)
        check(key in reply.lower(), f"{q!r}: {reply!r} does not say {key!r}")


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
        (["--train", write_jsonl("ok.jsonl", [good]), "--plot", os.path.join(TMP, "no-such-folder", "c.png")],
         "no-such-folder does not exist"),
    ]
    for args, want in cases:
        r = edgelm("finetune", "-m", BASE, "-o", out, "--full", "--chat-format", "chatml", *args)
        check(r.returncode != 0, f"{args}: exit 0")
        check(want in r.stderr, f"{args}: '{want}' not in {r.stderr!r}")
        check(r.stderr.strip().count("\n") <= 1, f"{args}: more than one line: {r.stderr!r}")
    r = edgelm("finetune", "-m", BASE, "-o", out, "--train", write_jsonl("ok2.jsonl", [good]))
    check(r.returncode != 0 and "--full" in r.stderr and "--lora-rank" in r.stderr, r.stderr)
    check(not os.path.exists(out), "a failed run must not write the output")


if __name__ == "__main__":
    setup()
    run_all(globals())
