#!/usr/bin/env python3
"""Writes the recogniser's car-domain bias from the car intents' training utterances:
data/car/speech/car.arpa (a trigram model, absolute discounting with back-off) and
data/car/speech/car.gram (a JSGF grammar accepting exactly those commands).

Sources: the CLINC150 training split of the intents the car assistant handles, the driver lines of
the argument filler's few-shot prompts (src/apps/intent/car_commands.cpp), the dev slot set
(tests/fixtures/car/slots-dev.jsonl), and spoken temperatures and volume levels. Never the
validation split or the held-out slot set: those are the speech evaluation set (make_set.py).
Words missing from PocketSphinx's dictionary are left out (a sentence with one is dropped).

    python3 bench/speech/make_lm.py [--dict /usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict]
"""
import argparse
import collections
import json
import math
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The intents the car assistant acts on (src/apps/intent/car.cpp: the commands with arguments and
# the fixed replies).
CAR_INTENTS = [
    "directions", "uber", "smart_home", "play_music", "change_volume", "make_call", "text", "distance", "traffic",
    "current_location", "gas", "mpg", "gas_type", "tire_pressure", "schedule_maintenance", "oil_change_when",
    "last_maintenance", "oil_change_how", "tire_change", "jump_start", "next_song", "what_song", "cancel", "no",
    "greeting", "thank_you", "goodbye", "weather",
]

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
       "seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    if n < 10000 and n % 1000 != 0 and 1100 <= n < 2000 or 2010 <= n < 2100:  # years, street numbers
        return number_words(n // 100) + " " + (number_words(n % 100) if n % 100 >= 10 else "oh " + ONES[n % 100]) \
            if n % 100 else number_words(n // 100) + " hundred"
    if n < 1000000:
        rest = n % 1000
        return number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))
    return " ".join(ONES[int(d)] for d in str(n))


def speakable(text):
    """Lowercase words as a recogniser writes them: numbers spelled out, punctuation dropped."""
    t = text.lower().replace("%", " percent ").replace("&", " and ").replace("+", " plus ")
    t = re.sub(r"(\d+)\.(\d+)", lambda m: m.group(1) + " point " + " ".join(m.group(2)), t)
    t = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", t)
    t = re.sub(r"\d+", lambda m: " " + number_words(int(m.group(0))) + " ", t)
    t = re.sub(r"[^a-z' ]+", " ", t)
    words = [w.strip("'") for w in t.split()]
    return " ".join(w for w in words if w)


def dictionary(path):
    words = set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                words.add(re.sub(r"\(\d+\)$", "", line.split()[0]))
    return words


def sentences():
    out = []
    with open(os.path.join(ROOT, "data", "clinc150", "train.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["intent"] in CAR_INTENTS:
                out.append(r["text"])
    src = open(os.path.join(ROOT, "src", "apps", "intent", "car_commands.cpp")).read()
    out += re.findall(r"Driver: ([^\\\"]+)\\n", src)
    with open(os.path.join(ROOT, "tests", "fixtures", "car", "slots-dev.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            out += r.get("context", []) + [r["text"]]
    for n in list(range(16, 31)) + list(range(60, 87)):
        out += [f"set the temperature to {n}", f"set the temperature to {n} degrees", f"make it {n} degrees"]
    for n in range(0, 11):
        out += [f"set the volume to {n}", f"volume {n}"]
    for n in range(1, 6):
        out += [f"turn it up by {n}", f"turn it down by {n}", f"{n} degrees warmer", f"{n} degrees cooler"]
    return out


def arpa(sents, discount=0.7):
    """A back-off trigram model: seen n-grams get (count - D) / context count, the mass taken off
    goes to the next lower order, spread in proportion to it (the back-off weight)."""
    counts = [collections.Counter() for _ in range(3)]
    for s in sents:
        w = ["<s>"] + s.split() + ["</s>"]
        for i in range(len(w)):
            counts[0][(w[i],)] += 1
            if i >= 1:
                counts[1][(w[i - 1], w[i])] += 1
            if i >= 2:
                counts[2][(w[i - 2], w[i - 1], w[i])] += 1
    vocab = sorted(k[0] for k in counts[0])
    total = sum(c for k, c in counts[0].items() if k[0] != "<s>")
    n_vocab = len(vocab) - 1
    prob = [{}, {}, {}]
    for (w,), c in counts[0].items():
        if w != "<s>":
            prob[0][(w,)] = (c + 0.5) / (total + 0.5 * n_vocab)  # add-half: every word keeps some mass
    prob[0][("<s>",)] = 0.0
    backoff = [{}, {}]

    def p_lower(order, gram):  # P(w | the last `order` words of gram[:-1]) through back-offs
        if order == 0:
            return prob[0][gram[-1:]]
        g = gram[-(order + 1):]
        if g in prob[order]:
            return prob[order][g]
        return backoff[order - 1].get(g[:-1], 1.0) * p_lower(order - 1, gram)

    for order in (1, 2):
        ctx_total = collections.Counter()
        for g, c in counts[order].items():
            ctx_total[g[:-1]] += c
        for g, c in counts[order].items():
            prob[order][g] = (c - discount) / ctx_total[g[:-1]]
        seen = collections.defaultdict(lambda: [0.0, 0.0])
        for g in counts[order]:
            seen[g[:-1]][0] += prob[order][g]
            seen[g[:-1]][1] += p_lower(order - 1, g)
        for ctx, (p_hi, p_lo) in seen.items():
            backoff[order - 1][ctx] = (1 - p_hi) / max(1e-9, 1 - p_lo)
    lines = ["\\data\\"] + [f"ngram {n + 1}={len(prob[n])}" for n in range(3)] + [""]
    for n in range(3):
        lines.append(f"\\{n + 1}-grams:")
        for g in sorted(prob[n]):
            p = prob[n][g]
            lp = -99.0 if p <= 0 else math.log10(p)
            row = f"{lp:.4f}\t{' '.join(g)}"
            if n < 2 and g != ("</s>",):
                row += f"\t{math.log10(backoff[n].get(g, 1.0)):.4f}"
            lines.append(row)
        lines.append("")
    lines.append("\\end\\")
    return "\n".join(lines) + "\n"


def jsgf(sents):
    body = "\n  | ".join(sorted(set(sents)))
    return "#JSGF V1.0;\n\ngrammar car;\n\npublic <command> =\n    " + body + "\n  ;\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dict", default="/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict")
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "car", "speech"))
    a = ap.parse_args()
    known = dictionary(a.dict)
    raw = [speakable(s) for s in sentences()]
    kept = [s for s in raw if s and all(w in known for w in s.split())]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "car.arpa"), "w") as f:
        f.write(arpa(kept))
    with open(os.path.join(a.out, "car.gram"), "w") as f:
        f.write(jsgf(kept))
    print(f"{len(kept)} of {len(raw)} sentences kept ({len(raw) - len(kept)} with words not in the dictionary), "
          f"{len({w for s in kept for w in s.split()})} words -> {a.out}/car.arpa, car.gram")


if __name__ == "__main__":
    main()
