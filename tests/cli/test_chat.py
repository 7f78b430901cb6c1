#!/usr/bin/env python3
"""`edgelm chat` driven through a pipe: replies stream, history is kept and trimmed to the
context, the KV cache prefix is reused, /reset and /exit work, errors do not end the session."""
import re

from harness import check, edgelm, run_all

MODEL = ["-m", "smollm2", "--temp", "0", "--stats", "-t", "2"]


def turns(stderr):
    return [dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", line))
            for line in stderr.splitlines() if line.startswith("[turn:")]


def test_multi_turn_keeps_history_and_reuses_cache():
    r = edgelm("chat", *MODEL, "-n", "24", input="Hello! My name is Ada.\nWhat is 2 + 2?\nThanks!\n")
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
    t = turns(r.stderr)
    check(len(t) == 3, f"expected 3 turns, got {t}")
    # (user, assistant) per turn; with no --system the model's template supplies its own
    check([x["messages"] for x in t] == [2, 4, 6], f"history not kept: {t}")
    check(all(x["dropped"] == 0 for x in t), f"nothing should be dropped at 2048 tokens: {t}")
    # Turn 2 and 3 reuse everything up to the previous reply: only the new message is evaluated.
    for prev, cur in zip(t, t[1:]):
        check(cur["reused"] >= prev["prompt"], f"KV prefix not reused: {prev} -> {cur}")
        check(cur["prompt"] > prev["prompt"] + prev["reply"], f"prompt did not grow: {prev} -> {cur}")
    check(len(r.stdout.strip().splitlines()) >= 3, f"replies missing: {r.stdout!r}")


def test_history_is_trimmed_to_the_context_keeping_the_system_prompt():
    msgs = "".join(f"Tell me a fact about the number {i}, please, in one sentence.\n" for i in range(8))
    r = edgelm("chat", *MODEL, "-c", "256", "-n", "40", "--system", "You are terse.", input=msgs)
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
    t = turns(r.stderr)
    check(len(t) == 8, f"expected 8 turns, got {len(t)}: {r.stderr}")
    check(t[-1]["dropped"] > 0, f"a 256-token context must drop old exchanges: {t}")
    check(all(x["prompt"] <= 256 - 40 for x in t), f"prompt exceeded the budget: {t}")
    # dropped count never decreases; the message count stays odd (system + pairs + new reply)
    check(all(b["dropped"] >= a["dropped"] for a, b in zip(t, t[1:])), f"{t}")
    check(all(x["messages"] % 2 == 1 for x in t), f"system prompt lost or pairs split: {t}")


def test_reset_and_exit():
    r = edgelm("chat", *MODEL, "-n", "8", input="Hi there\n/reset\nHello again\n/exit\nnever read\n")
    check(r.returncode == 0, r.stderr)
    t = turns(r.stderr)
    check(len(t) == 2, f"expected 2 turns before /exit: {t}")
    check(t[1]["messages"] == 2, f"/reset did not clear the history: {t}")
    check("[reset]" in r.stderr, r.stderr)


def test_too_long_message_is_an_error_but_the_session_goes_on():
    long = "word " * 400
    r = edgelm("chat", *MODEL, "-c", "128", "-n", "8", input=long + "\nHi\n")
    check("error:" in r.stderr and "tokens" in r.stderr, f"no clear error: {r.stderr}")
    check(len(turns(r.stderr)) == 1, f"the next message was not answered: {r.stderr}")
    # A pipe's exit code says that a message went unanswered.
    check(r.returncode != 0 and "error: 1 of 2 messages failed" in r.stderr.strip().splitlines()[-1], r.stderr)


def test_missing_model_is_a_one_line_error():
    r = edgelm("chat", "-m", "no-such-model", input="hi\n")
    check(r.returncode != 0, "should fail")
    lines = r.stderr.strip().splitlines()
    check(len(lines) == 1 and "fetch-models" in lines[0], f"unclear error: {r.stderr!r}")


if __name__ == "__main__":
    run_all(globals())
