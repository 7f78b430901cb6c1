"""`edgelm train-classifier`, `classify` and `car` end to end on a small CLINC150 slice
(tests/intent/data: 8 intents + oos): training output, reproducibility (byte-identical heads,
with and without the feature cache), accuracy on held-back lines, the car demo on a scripted
conversation (arguments filled by SmolLM2, the state after each command), `car --eval`, spoken
commands (`car --audio`, `--live`, `--speak`), and clear errors for bad input. About 70-100 s on 2
cores."""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, SRC, check, edgelm, run_all  # noqa: E402

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
    # The vehicle state after each command: the arguments come from SmolLM2 under each command's
    # schema; "turn the volume up" is relative to the state, "call her" needs the turn before,
    # the last line is out of scope.
    script = [
        ("give me directions to the airport", ["state navigation.destination: (none) -> airport"]),
        ("set the temperature to 72 please", ["call set_temperature(22.0)", "state climate.power: off -> on",
                                              "state climate.temperature: 21.0 C -> 22.0 C"]),
        ("play some jazz", ["state media.status: off -> playing", "state media.genre: (none) -> jazz"]),
        ("turn the volume up", ["call set_volume(7)", "state media.volume: 5 -> 7"]),
        ("text sarah that i'm running late", ["state phone.message_to: (none) -> sarah",
                                              "state phone.message: (none) -> i'm running late"]),
        ("call her", ['call call_contact("sarah")', "state phone.call: (none) -> sarah"]),
        ("who won the world series in 1998", ["say: Sorry, I can't help with that"]),
    ]
    r = edgelm("car", "-m", MODEL, "--head", HEAD, input="\n".join(t for t, _ in script) + "\n")
    check(r.returncode == 0, r.stderr)
    turns = r.stdout.split("driver: ")[1:]
    check(len(turns) == len(script), r.stdout)
    for (text, wants), out in zip(script, turns):
        check(out.startswith(text + "\n"), out)
        for want in wants:
            check(want in out, f"{text!r}: no {want!r} in\n{out}")
    check(not [l for l in turns[-1].splitlines() if l.startswith(("  state ", "  call ", "  arguments "))], turns[-1])
    final = json.loads(r.stdout.strip().splitlines()[-1].removeprefix("final state: "))
    want = {"destination": "airport", "climate_on": True, "temperature_c": 22.0, "media": "playing", "genre": "jazz",
            "volume": 7, "message_to": "sarah", "call": "sarah"}
    check({k: final[k] for k in want} == want, final)


def test_car_eval_reports_exact_match():
    # The slot set with the intents given: no head needed; a few cases, one of each kind.
    cases = os.path.join(TMP, "cases.jsonl")
    with open(cases, "w") as f:
        f.write(json.dumps({"text": "call mom", "intent": "make_call",
                            "call": {"name": "call_contact", "args": {"contact": "mom"}}}) + "\n")
        f.write(json.dumps({"text": "a bit louder", "context": ["set the volume to 6"], "state": {"volume": 6},
                            "intent": "change_volume", "call": {"name": "set_volume", "args": {"level": 8}}}) + "\n")
        f.write(json.dumps({"text": "call mom", "intent": "make_call",
                            "call": {"name": "call_contact", "args": {"contact": "dad"}}}) + "\n")
        f.write(json.dumps({"text": "what is the meaning of life", "intent": "oos", "call": None}) + "\n")
    r = edgelm("car", "-m", MODEL, "--eval", cases, "--gold-intent", "--json")
    check(r.returncode == 0, r.stderr)
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    check([row.get("ok") for row in rows[:-1]] == [True, True, False, True], r.stdout)
    s = rows[-1]["summary"]
    check(s["commands"] == 3 and abs(s["exact_match_pct"] - 200 / 3) < 1e-6 and s["fallback_ok_pct"] == 100, s)
    r = edgelm("car", "-m", MODEL, "--eval", cases)
    check(r.returncode != 0 and "--head is required" in r.stderr, r.stderr)
    with open(cases, "a") as f:
        f.write('{"text": "x", "intent": "make_call", "call": {"args": {}}}\n')
    r = edgelm("car", "-m", MODEL, "--eval", cases, "--gold-intent")
    check(r.returncode != 0 and f"{cases}:5: malformed case" in r.stderr, r.stderr)


SPEECH = os.path.join(SRC, "tests", "fixtures", "speech")


def speech_built():
    r = edgelm("car", "--transcribe", "--audio", os.path.join(SPEECH, "play-jazz-44k-stereo.wav"))
    if r.returncode != 0:
        # A build without PocketSphinx / eSpeak NG says so, in one line.
        check("speech support was not built" in r.stderr and r.stderr.count("\n") == 1, r.stderr)
        return False
    check(r.stdout.startswith("heard [") and "play some jazz" in r.stdout, r.stdout)
    return True


def write_wav(path, samples, rate=16000):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(int(max(-32768, min(32767, round(x)))).to_bytes(2, "little", signed=True)
                               for x in samples))


def test_car_hears_spoken_commands():
    # Three commands in one recording: each utterance is one turn; the state is the vehicle's.
    if not speech_built():
        return
    spoken = os.path.join(TMP, "reply.wav")
    recording = os.path.join(SPEECH, "jazz-airport-volume.wav")
    r = edgelm("car", "-m", MODEL, "--head", HEAD, "--audio", recording, "--speak", spoken)
    check(r.returncode == 0, r.stderr)
    heard = [l for l in r.stdout.splitlines() if l.startswith("heard [")]
    check(len(heard) == 3 and "play some jazz" in heard[0] and heard[1].endswith(": how do i get to the airport")
          and heard[2].endswith(": turn the volume up"), r.stdout)
    check("state media.genre: (none) -> jazz" in r.stdout, r.stdout)
    check("state navigation.destination: (none) -> airport" in r.stdout, r.stdout)
    check("state media.volume: 5 -> 7" in r.stdout and "ms from end of speech to action" in r.stdout, r.stdout)
    final = json.loads(r.stdout.strip().splitlines()[-1].removeprefix("final state: "))
    want = {"destination": "airport", "media": "playing", "genre": "jazz", "volume": 7}
    check({k: final[k] for k in want} == want, final)
    # The replies, spoken: a 16 kHz mono WAV a few seconds long.
    with wave.open(spoken) as w:
        check(w.getframerate() == 16000 and w.getnchannels() == 1 and 1.5 < w.getnframes() / 16000 < 15,
              (w.getframerate(), w.getnchannels(), w.getnframes()))
    # The same recording as a live stream (raw PCM on stdin), the recogniser alone.
    with wave.open(recording) as w:
        raw = w.readframes(w.getnframes())
    p = subprocess.run([BIN, "car", "--live", "--transcribe", "--json"], input=raw, capture_output=True)
    check(p.returncode == 0, p.stderr)
    rows = [json.loads(l) for l in p.stdout.decode().splitlines()]
    check([r["text"] for r in rows][1:] == ["how do i get to the airport", "turn the volume up"], rows)
    check(rows[0]["end_s"] < rows[1]["start_s"] < rows[1]["end_s"] < rows[2]["start_s"], rows)


def test_car_silence_and_noise_do_nothing():
    if not speech_built():
        return
    quiet = os.path.join(TMP, "quiet.wav")
    write_wav(quiet, [0] * 32000)
    noisy = os.path.join(TMP, "noise.wav")
    rng, b, out = random.Random(5), 0.0, []
    for _ in range(16000 * 3):  # road-like noise: low frequencies heavy
        b = 0.97 * b + rng.gauss(0, 300)
        out.append(b)
    write_wav(noisy, out)
    r = edgelm("car", "-m", MODEL, "--head", HEAD, "--audio", quiet, noisy)
    check(r.returncode == 0, r.stderr)
    check(not [l for l in r.stdout.splitlines() if l.startswith(("  call ", "  state ", "> intent"))], r.stdout)
    final = json.loads(r.stdout.strip().splitlines()[-1].removeprefix("final state: "))
    check(final["destination"] == "" and final["volume"] == 5 and final["media"] == "off", final)


def test_car_bad_audio_clear_errors():
    if not speech_built():
        return
    good = open(os.path.join(SPEECH, "call-mom-8k.wav"), "rb").read()
    cases = [("empty.wav", b"", "empty file"), ("text.wav", b"play some jazz please\n" * 4, "not a WAV file"),
             ("short.wav", good[:20], "truncated"), ("cut.wav", good[:2000], "truncated: the data chunk says"),
             ("float.wav", good[:20] + (3).to_bytes(2, "little") + good[22:], "floating-point samples")]
    for name, data, want in cases:
        path = os.path.join(TMP, name)
        with open(path, "wb") as f:
            f.write(data)
        r = edgelm("car", "-m", MODEL, "--head", HEAD, "--audio", path)
        check(r.returncode != 0 and want in r.stderr and path in r.stderr and r.stderr.count("\n") == 1, r.stderr)
    r = edgelm("car", "--transcribe", "--audio", os.path.join(TMP, "missing.wav"))
    check(r.returncode != 0 and "cannot open" in r.stderr, r.stderr)
    r = edgelm("car", "-m", MODEL, "--head", HEAD, "--speak", os.path.join(TMP, "x.wav"))
    check(r.returncode != 0 and "--speak needs --audio or --live" in r.stderr, r.stderr)
    r = edgelm("car", "--live", "--audio", "-", "--transcribe")
    check(r.returncode != 0 and "pick one" in r.stderr, r.stderr)
    r = edgelm("car", "--transcribe", "--audio", os.path.join(SPEECH, "call-mom-8k.wav"), "--bias", "car")
    check(r.returncode != 0 and "--bias" in r.stderr, r.stderr)


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
