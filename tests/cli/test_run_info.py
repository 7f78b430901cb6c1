#!/usr/bin/env python3
"""`edgelm run` and `edgelm info` end to end, including bad input."""
import json
import os
import re
import tempfile

from harness import SRC, check, edgelm, run_all


def fixture():
    with open(os.path.join(SRC, "tests", "fixtures", "model", "smollm2.json")) as f:
        return json.load(f)


def test_run_greedy_streams_the_oracle_continuation():
    case = fixture()["cases"][0]
    r = edgelm("run", "-m", "smollm2", "-p", case["prompt"], "-n", "8", "--temp", "0", "-t", "2")
    check(r.returncode == 0, r.stderr)
    check(r.stdout.startswith(case["prompt"]), r.stdout)
    check(" Paris" in r.stdout, f"unexpected continuation: {r.stdout!r}")


def test_seed_reproduces_sampled_text():
    args = ["run", "-m", "smollm2", "-p", "Once upon a time", "-n", "16", "--temp", "1.0", "-t", "2"]
    a = edgelm(*args, "-s", "7")
    b = edgelm(*args, "-s", "7")
    c = edgelm(*args, "-s", "8")
    check(a.returncode == 0 and b.returncode == 0 and c.returncode == 0, a.stderr + c.stderr)
    check(a.stdout == b.stdout, "same seed gave different text")
    check(a.stdout != c.stdout, "different seeds gave the same 16 sampled tokens")


def drawn_seed(stderr):
    m = re.search(r"^seed (\d+) \(pass -s \1 to repeat\)$", stderr, re.M)
    check(m, f"no seed line: {stderr!r}")
    return m.group(1)


def test_unseeded_runs_differ_and_print_the_seed_that_repeats_them():
    args = ["run", "-m", "smollm2", "-p", "Once upon a time", "-n", "24", "--temp", "1.5", "-t", "2"]
    a, b = edgelm(*args), edgelm(*args)
    check(a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr)
    sa, sb = drawn_seed(a.stderr), drawn_seed(b.stderr)
    check(sa != sb, f"two runs drew the same seed {sa}")
    check(a.stdout != b.stdout, "two unseeded runs gave the same 24 sampled tokens")
    again = edgelm(*args, "-s", sa)
    check(again.returncode == 0 and again.stdout == a.stdout, "the printed seed did not repeat the run")
    check("seed" not in again.stderr, f"a given seed is printed again: {again.stderr!r}")
    r = edgelm(*args, "-s", "-1")  # llama.cpp's spelling of "random"
    check(r.returncode == 0, r.stderr)
    drawn_seed(r.stderr)
    greedy = edgelm("run", "-m", "smollm2", "-p", "Hi", "-n", "2", "--temp", "0")
    check("seed" not in greedy.stderr, f"greedy decoding has no seed to print: {greedy.stderr!r}")


def test_malformed_numbers_seeds_and_commands_are_named():
    cases = [
        (["run", "--temp", "abc", "-p", "x"], "--temp: 'abc' is not a number"),
        (["run", "--temp", "200", "-p", "x"], "--temp: 200 is outside [0"),
        (["run", "-n", "1.5", "-p", "x"], "--n-predict: '1.5' is not a whole number"),
        (["run", "-s", "-2", "-p", "x"], "--seed: -2 is outside [-1"),
        (["run", "-s", "x7", "-p", "x"], "--seed: 'x7' is not a whole number"),
        (["frobnicate"], "unknown command 'frobnicate' — the commands are run, chat"),
    ]
    for args, want in cases:
        r = edgelm(*args)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and want in lines[0], f"{args}: {r.returncode} {r.stderr!r}")


def test_generation_past_the_context_shifts_it_with_a_notice():
    prompt = "1, 2, 3, 4, 5, 6, 7, 8,"
    args = ["run", "-m", "smollm2", "-p", prompt, "-c", "48", "-n", "100", "--temp", "0", "-t", "2", "--timings"]
    r = edgelm(*args)
    check(r.returncode == 0, r.stderr)
    check("generated 100 tokens" in r.stderr, f"stopped early: {r.stderr!r}")
    kept = re.findall(r"\[context full: dropped \d+ tokens after the first (\d+), continuing\]", r.stderr)
    check(len(kept) >= 2 and all(int(k) <= 1 for k in kept), f"no context shift notices, or the prompt kept: {r.stderr!r}")
    check(r.stdout.startswith(prompt) and len(r.stdout) > len(prompt) + 100, r.stdout)
    # Keeping the whole prompt: it stays in the context at every shift.
    r = edgelm(*args, "--keep", "-1")
    check(r.returncode == 0 and "generated 100 tokens" in r.stderr, r.stderr)
    kept = re.findall(r"dropped \d+ tokens after the first (\d+)", r.stderr)
    check(kept and all(int(k) >= 8 for k in kept), f"the prompt was not kept: {r.stderr!r}")
    # --no-context-shift stops at the end of the context and says so.
    r = edgelm(*args, "--no-context-shift")
    check(r.returncode == 0 and "dropped" not in r.stderr, r.stderr)
    m = re.search(r"generated (\d+) tokens", r.stderr)
    check(m and int(m.group(1)) < 48, r.stderr)
    check("[context full at 48 tokens: generation stopped" in r.stderr, r.stderr)


def test_prompt_longer_than_context_is_rejected():
    r = edgelm("run", "-m", "smollm2", "-p", "hello " * 300, "-c", "64", "-n", "4")
    check(r.returncode != 0, "should fail")
    check("context" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr)


def test_kv_type_q8_0_runs_and_a_bad_one_is_named():
    case = fixture()["cases"][0]
    r = edgelm("run", "-m", "smollm2", "-p", case["prompt"], "-n", "8", "--temp", "0", "-t", "2", "--kv-type", "q8_0")
    check(r.returncode == 0, r.stderr)
    check(" Paris" in r.stdout, f"unexpected continuation with the 8-bit cache: {r.stdout!r}")
    r = edgelm("bench", "-m", "smollm2", "-p", "0", "-n", "4", "-t", "1", "-r", "1", "--json", "--kv-type", "Q8_0")
    check(r.returncode == 0 and json.loads(r.stdout.splitlines()[0])["kv_type"] == "Q8_0", r.stdout + r.stderr)
    j = json.loads(r.stdout.splitlines()[0])
    # The page-cache state of the model file, in bytes mapped with 2 MiB pages: part of its own mapping.
    huge = j["weights_2mib_mapped_bytes"]
    check(isinstance(huge, int) and 0 <= huge <= os.path.getsize(j["model_file"]), f"weights_2mib_mapped_bytes {huge}")
    r = edgelm("run", "-m", "smollm2", "-p", "x", "--kv-type", "q4")
    check(r.returncode != 0 and "--kv-type" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr)


def test_bench_energy_names_its_source():
    r = edgelm("bench", "-m", "smollm2", "-p", "16", "-n", "4", "-t", "1", "-r", "2", "--json", "--energy",
               "--watts-per-core", "3.5")
    check(r.returncode == 0, r.stderr)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    check([j["test"] for j in rows] == ["pp16", "tg4"], r.stdout)
    for j in rows:
        check(j["joules_per_token"] > 0 and len(j["samples_joules_per_token"]) == 2, f"{j}")
        src = j["energy_source"]
        # Measured (RAPL / perf) with the idle draw subtracted, or an estimate that says it is one.
        check(src.startswith(("rapl", "perf")) if j["energy_measured"] else "estimate" in src and "3.5 W" in src, src)
    r = edgelm("bench", "-m", "smollm2", "-p", "16", "-n", "0", "-t", "1", "-r", "1", "--energy")
    check(r.returncode == 0 and "energy: " in r.stdout and "mJ / token" in r.stdout, r.stdout)


def test_bad_flag_and_missing_file():
    r = edgelm("run", "--temp", "abc", "-p", "x")
    check(r.returncode != 0 and "error:" in r.stderr, r.stderr)
    r = edgelm("run", "-m", "/nonexistent/model.gguf", "-p", "x")
    check(r.returncode != 0 and "does not exist" in r.stderr, r.stderr)
    r = edgelm("run", "-f", "/nonexistent/prompt.txt")
    check(r.returncode == 1 and "cannot open prompt file '/nonexistent/prompt.txt'" in r.stderr, r.stderr)
    # A file that never ends is read up to a cap, not until memory runs out.
    r = edgelm("run", "-f", "/dev/zero")
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and len(lines) == 1 and "prompt file '/dev/zero' is larger than 64 MiB" in lines[0], r.stderr)


def test_corrupt_model_is_a_clear_error():
    with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
        f.write(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
        f.flush()
        r = edgelm("run", "-m", f.name, "-p", "x")
        check(r.returncode == 1, f"exit {r.returncode}")
        check(len(r.stderr.strip().splitlines()) == 1 and f.name in r.stderr, r.stderr)


def test_info_describes_the_model():
    r = edgelm("info", "smollm2")
    check(r.returncode == 0, r.stderr)
    for want in ["llama", "30", "576", "9 query, 3 key/value", "49152", "Q4_1", "Q8_0", "tied", "present"]:
        check(want in r.stdout, f"'{want}' missing from info:\n{r.stdout}")


if __name__ == "__main__":
    run_all(globals())
