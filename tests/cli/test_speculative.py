#!/usr/bin/env python3
"""Speculative decoding end to end: `run`, `chat`, `serve` and `bench` with a drafter give the
plain greedy text, report their drafts, and refuse bad drafter options with one-line errors."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
from serve_harness import Server, check, edgelm, run_all  # noqa: E402

PROMPT = "The list: apples, pears, plums, cherries. The list again: apples, pears,"
RUN = ["run", "-m", "smollm2", "-p", PROMPT, "-n", "24", "--temp", "0", "-t", "2"]


def test_run_with_each_drafter_gives_the_plain_text():
    plain = edgelm(*RUN)
    check(plain.returncode == 0, plain.stderr)
    for drafter in (["--lookup"], ["--draft-exit", "12"], ["--draft", "smollm2", "--draft-max", "3"],
                    ["--lookup", "--draft-fixed", "--draft-max", "6"]):
        r = edgelm(*RUN, *drafter, "--timings")
        check(r.returncode == 0, r.stderr)
        check(r.stdout == plain.stdout, f"{drafter}: {r.stdout!r} != {plain.stdout!r}")
        check("drafts: " in r.stderr and " kept " in r.stderr, f"{drafter}: no draft report in {r.stderr!r}")


def test_chat_with_a_drafter_reports_its_drafts():
    r = edgelm("chat", "-m", "smollm2", "--temp", "0", "-n", "16", "--lookup", "--stats",
               input="Say: one two three one two three\n")
    check(r.returncode == 0, r.stderr)
    check("drafts: " in r.stderr, r.stderr)


def test_bad_drafter_options_are_one_line_errors():
    cases = [
        (["--draft", "gemma3"], "different vocabularies"),
        (["--draft-exit", "30"], "whole model"),
        (["--draft-exit", "99"], "whole model"),
        (["--draft", "/nonexistent.gguf"], "nonexistent"),
        (["--lookup", "--draft-exit", "3"], "excludes"),
        (["--lookup", "--draft-max", "0"], "draft-max"),
    ]
    for extra, says in cases:
        r = edgelm(*RUN, *extra)
        check(r.returncode != 0, f"{extra} was accepted")
        err = r.stderr.strip()
        check(says in err, f"{extra}: {err!r} does not say {says!r}")
        check(len(err.splitlines()) == 1, f"{extra}: not one line: {err!r}")
        check("Traceback" not in err and "terminate" not in err, err)


def test_bench_compares_plain_and_speculative_decoding():
    with tempfile.TemporaryDirectory() as d:
        prompts = os.path.join(d, "p.jsonl")
        with open(prompts, "w") as f:
            f.write(json.dumps({"prompt": PROMPT}) + "\n" + json.dumps("1, 2, 3, 4, 5, 6,") + "\n")
        r = edgelm("bench", "-m", "smollm2", "--lookup", "--prompts", prompts, "-n", "16", "-t", "1", "-r", "1",
                   "--json")
        check(r.returncode == 0, r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        check(len(rows) == 4 and "pass_seconds_by_tokens" in rows[0], r.stdout)
        total = rows[-1]
        check(total["prompt"] == "all" and total["same_text"] == 2, total)
        check(total["drafted"] > 0 and 0 < total["acceptance_rate"] <= 1, total)
        bad = os.path.join(d, "bad.jsonl")
        with open(bad, "w") as f:
            f.write("{not json\n")
        r = edgelm("bench", "-m", "smollm2", "--lookup", "--prompts", bad, "-n", "4", "-t", "1")
        check(r.returncode != 0 and "not JSON" in r.stderr, r.stderr)
        r = edgelm("bench", "-m", "smollm2", "--lookup", "-n", "4", "-t", "1")
        check(r.returncode != 0 and "--prompts" in r.stderr, r.stderr)


def test_serve_with_a_drafter_answers_as_without_and_counts_drafts():
    body = {"prompt": PROMPT, "max_tokens": 16, "temperature": 0}
    with Server("-P", "2", "-c", "256") as plain:
        status, _, want = plain.json("POST", "/v1/completions", body)
        check(status == 200, want)
    with Server("-P", "2", "-c", "256", "--lookup") as s:
        status, _, got = s.json("POST", "/v1/completions", body)
        check(status == 200, got)
        check(got["choices"][0]["text"] == want["choices"][0]["text"], f"{got} != {want}")
        m = s.metrics()
        accepted = m.get('edgelm_draft_tokens_total{outcome="accepted"}', 0)
        check(accepted > 0, f"no accepted drafts in /metrics: {m}")


if __name__ == "__main__":
    run_all(globals())
