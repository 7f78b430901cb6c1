#!/usr/bin/env python3
"""Renders the speech evaluation set with eSpeak NG and adds car-cabin noise with sox.

Utterances: the CLINC150 validation split of the car intents (make_lm.CAR_INTENTS; --per-intent
caps how many of each) and the held-out argument-filling set (tests/fixtures/car/slots-heldout.jsonl).
None of them is in the recogniser's car model or grammar (those come from the training split and
the dev slot set). Each utterance is spoken once, in the spoken-word form that is also the WER
reference (numbers as words), by one of several voices at one of several speeds (in turn), with
0.3 s before and 0.7 s after it, then mixed with cabin noise at each SNR: a noise bed made once by
sox (brown noise low-passed at 400 Hz for road and wind, an engine hum at 32 Hz and its harmonics,
pink noise low-passed at 2.5 kHz for ventilation), a random stretch of it per file, scaled to the
SNR over the speech's RMS. Writes OUT/<snr>/<id>.wav (16 kHz mono PCM16) and OUT/manifest.jsonl.

    python3 bench/speech/make_set.py --out bench/speech/set [--per-intent 20] [--snr clean 20 10 5]
    python3 bench/speech/make_set.py --out bench/speech/set-f2 --voices en-us+f2 --speeds 150 --snr clean
"""
import argparse
import json
import os
import random
import subprocess
import sys
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_lm import CAR_INTENTS, ROOT, speakable  # noqa: E402

VOICES = ["en-us", "en-us+f2", "en-us+m3", "en-gb+f3", "en-us+m7"]
SPEEDS = [135, 160, 185]
RATE = 16000


def read(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == RATE, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)


def write(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.clip(np.round(x), -32768, 32767).astype(np.int16).tobytes())


def noise_bed(path, seconds=120):
    # The layers one at a time, so each has its own filter and level.
    parts = []
    for name, gen, effects in [("road", ["brownnoise"], ["lowpass", "400"]),
                               ("hum", ["sine", "32"], []), ("hum2", ["sine", "64"], []), ("hum3", ["sine", "96"], []),
                               ("fan", ["pinknoise"], ["lowpass", "2500"])]:
        p = path + "." + name + ".wav"
        subprocess.run(["sox", "-q", "-R", "-n", "-r", str(RATE), "-c", "1", "-b", "16", p, "synth", str(seconds)] + gen
                       + effects + ["gain", "-n", "-3"], check=True)
        parts.append(read(p))
        os.remove(p)
    levels = {"road": 1.0, "hum": 0.5, "hum2": 0.25, "hum3": 0.12, "fan": 0.3}
    bed = sum(levels[n] * x / (np.sqrt(np.mean(x * x)) + 1e-9) for n, x in zip(levels, parts))
    return bed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "speech", "set"))
    ap.add_argument("--per-intent", type=int, default=20, help="CLINC150 validation utterances per car intent")
    ap.add_argument("--snr", nargs="+", default=["clean", "20", "10", "5"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--voices", nargs="+", default=VOICES, help="eSpeak NG voices, taken in turn")
    ap.add_argument("--speeds", nargs="+", type=int, default=SPEEDS, help="words per minute, taken in turn")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    items = []
    per = {}
    with open(os.path.join(ROOT, "data", "clinc150", "val.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["intent"] in CAR_INTENTS and per.get(r["intent"], 0) < a.per_intent:
                per[r["intent"]] = per.get(r["intent"], 0) + 1
                items.append({"id": f"val{len(items):04d}", "source": "clinc150-val", "text": r["text"],
                              "intent": r["intent"]})
    with open(os.path.join(ROOT, "tests", "fixtures", "car", "slots-heldout.jsonl")) as f:
        for i, line in enumerate(f):
            r = json.loads(line)
            items.append({"id": f"slot{i:03d}", "source": "slots-heldout", "text": r["text"], "intent": r["intent"],
                          "case": r})
    os.makedirs(a.out, exist_ok=True)
    tmp = os.path.join(a.out, "tmp")
    os.makedirs(tmp, exist_ok=True)
    bed = noise_bed(os.path.join(tmp, "bed.wav"))
    for snr in a.snr:
        os.makedirs(os.path.join(a.out, snr), exist_ok=True)
    with open(os.path.join(a.out, "manifest.jsonl"), "w") as man:
        for k, it in enumerate(items):
            it["ref"] = speakable(it["text"])
            it["voice"] = a.voices[k % len(a.voices)]
            it["speed"] = a.speeds[(k // len(a.voices)) % len(a.speeds)]
            raw = os.path.join(tmp, "raw.wav")
            subprocess.run(["espeak-ng", "-v", it["voice"], "-s", str(it["speed"]), "-w", raw, it["ref"]], check=True)
            pcm = os.path.join(tmp, "16k.wav")
            subprocess.run(["sox", "-q", raw, "-r", str(RATE), "-c", "1", "-b", "16", pcm,
                            "pad", "0.3", "0.7"], check=True)
            x = read(pcm)
            speech_rms = np.sqrt(np.mean(x[np.abs(x) > 0] ** 2)) if np.any(x) else 1.0
            start = rng.randrange(0, len(bed) - len(x))
            n = bed[start:start + len(x)]
            n_rms = np.sqrt(np.mean(n * n))
            for snr in a.snr:
                y = x if snr == "clean" else x + n * (speech_rms / n_rms) * 10 ** (-float(snr) / 20)
                peak = np.max(np.abs(y))
                if peak > 32000:
                    y = y * (32000 / peak)
                write(os.path.join(a.out, snr, it["id"] + ".wav"), y)
            man.write(json.dumps(it) + "\n")
            if sys.stderr.isatty():
                print(f"\r{k + 1}/{len(items)}", end="", file=sys.stderr)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"{len(items)} utterances x {len(a.snr)} conditions -> {a.out}")


if __name__ == "__main__":
    main()
