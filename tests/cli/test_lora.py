"""LoRA end to end: `edgelm finetune --lora-rank` over SmolLM2-135M as shipped (Q4_1, frozen and
still quantized) teaching it four facts that `edgelm chat --lora` then answers; on the tiny
synthetic llama of test_finetune.py, `edgelm export --merge-lora` giving what the adapter gives
at run time, `edgelm serve`'s per-request adapter scales, and the errors for bad adapters and
options."""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
import test_finetune as ft  # noqa: E402
from harness import check, edgelm, run_all  # noqa: E402
from serve_harness import Server, check_error_body  # noqa: E402


def test_lora_on_the_quantized_smollm2_learns_facts():
    """LoRA adapters over SmolLM2-135M as shipped (Q4_1, frozen and still quantized) on the same
    four facts: the validation loss falls and `edgelm chat --lora` answers them. (That the base
    does not know them is checked by test_finetune.py's SmolLM2 run.)"""
    facts = ft.SMOLLM2_FACTS
    train = ft.write_jsonl("lora_facts.jsonl", [ft.conv(q, a) for q, a, _ in facts])
    val = ft.write_jsonl("lora_facts_val.jsonl", [ft.conv("Tell me the colour of the sky on Zorbia.", facts[0][1]),
                                               ft.conv("Who was the founder of Quillmoor?", facts[1][1])])
    adapter = os.path.join(ft.TMP, "smollm2-facts-lora.gguf")
    r = edgelm("finetune", "-m", ft.VOCAB, "--train", train, "--val", val, "-o", adapter, "--lora-rank", "16",
               "--lora-alpha", "32", "--lora-targets", "q,k,v,o,gate,up,down", "--epochs", "8", "--lr", "1e-3",
               "--batch", "4", "-t", "2")
    check(r.returncode == 0, r.stderr)
    check("LoRA adapter written" in r.stdout, r.stdout)
    line = [l for l in r.stdout.splitlines() if l.startswith("validation loss")][0]
    before, after = float(line.split()[2]), float(line.split()[4])
    check(after < 0.1 * before, f"validation loss {before} -> {after}")
    for q, _, key in facts:
        reply = ft.greedy_reply(ft.VOCAB, q, lora=adapter)
        check(key in reply.lower(), f"{q!r} with the adapter: {reply!r} does not say {key!r}")


def test_lora_bad_input_is_one_line():
    good = ft.write_jsonl("lora_ok.jsonl", [ft.chat(*ft.FACTS[0])])
    out = os.path.join(ft.TMP, "never-adapter.gguf")
    cases = [
        (["--full", "--lora-rank", "4"], "--full and --lora-rank exclude each other"),
        (["--lora-rank", "4", "--lora-targets", "q,qkv"], "unknown LoRA target module 'qkv'"),
        (["--lora-rank", "100"], "LoRA rank 100 is larger than the matrix"),
        (["--lora-rank", "0"], "--lora-rank"),
    ]
    for args, want in cases:
        r = edgelm("finetune", "-m", ft.BASE, "--train", good, "-o", out, "--chat-format", "chatml", *args)
        check(r.returncode != 0, f"{args}: exit 0")
        check(want in r.stderr, f"{args}: '{want}' not in {r.stderr!r}")
        check(r.stderr.strip().count("\n") == 0, f"{args}: more than one line: {r.stderr!r}")
    check(not os.path.exists(out), "a failed run must not write the output")
    # an adapter made on the tiny model, applied to SmolLM2 (same architecture, other shapes)
    tiny = os.path.join(ft.TMP, "tiny-adapter.gguf")
    r = edgelm("finetune", "-m", ft.BASE, "--train", good, "-o", tiny, "--chat-format", "chatml", "--lora-rank", "2",
               "--epochs", "1")
    check(r.returncode == 0, r.stderr)
    for cmd in (["run", "-p", "hi", "-n", "1"], ["chat", "-n", "1"]):
        r = edgelm(*cmd, "-m", ft.VOCAB, "--lora", tiny, input="hi\n")
        check(r.returncode != 0 and "was made for the model" in r.stderr, f"{cmd}: {r.stderr!r}")
        check(r.stderr.strip().count("\n") == 0, f"{cmd}: more than one line: {r.stderr!r}")
    # merged into the weights, the adapter gives the same greedy text as applied at run time
    merged = os.path.join(ft.TMP, "tiny-merged.gguf")
    r = edgelm("export", "-m", ft.BASE, "--merge-lora", tiny, "-o", merged, "--out-type", "f32")
    check(r.returncode == 0 and "merged 1 LoRA adapter" in r.stdout, r.stderr)
    applied = edgelm("run", "-m", ft.BASE, "--lora", tiny, "-p", "Who founded", "-n", "8", "--temp", "0")
    folded = edgelm("run", "-m", merged, "-p", "Who founded", "-n", "8", "--temp", "0")
    check(applied.returncode == 0 and folded.returncode == 0, applied.stderr + folded.stderr)
    check(applied.stdout == folded.stdout, f"applied {applied.stdout!r} vs merged {folded.stdout!r}")
    r = edgelm("export", "-m", ft.BASE, "-o", merged)
    check(r.returncode != 0 and "nothing to merge" in r.stderr, r.stderr)
    r = edgelm("run", "-m", ft.BASE, "--lora", ft.BASE, "-p", "hi", "-n", "1")
    check(r.returncode != 0 and "is not a LoRA adapter" in r.stderr, r.stderr)
    r = edgelm("run", "-m", ft.BASE, "--lora", tiny, "--lora-scale", "1", "--lora-scale", "2", "-p", "hi", "-n", "1")
    check(r.returncode != 0 and "more --lora-scale values" in r.stderr, r.stderr)
    r = edgelm("run", "-m", ft.BASE, "--lora", os.path.join(ft.TMP, "missing.gguf"), "-p", "hi", "-n", "1")
    check(r.returncode != 0 and "missing.gguf" in r.stderr, r.stderr)


def test_serve_applies_adapters_per_request():
    """`edgelm serve --lora` on the tiny model with two slots: each request's "lora" scales (or the
    server's, which POST /lora-adapters sets) give exactly what `edgelm run` gives with that
    scale, also when a request with the adapter and one without share a decode step."""
    train = ft.write_jsonl("serve_lora.jsonl", [ft.chat(q, a) for q, a in ft.FACTS])
    adapter = os.path.join(ft.TMP, "serve-adapter.gguf")
    r = edgelm("finetune", "-m", ft.BASE, "--train", train, "-o", adapter, "--chat-format", "chatml",
               "--lora-rank", "4", "--lora-targets", "q,v,gate,down", "--epochs", "3", "--lr", "1e-2")
    check(r.returncode == 0, r.stderr)
    prompt, n = "Who founded", 10

    def run(*extra):
        r = edgelm("run", "-m", ft.BASE, "-p", prompt, "-n", str(n), "--temp", "0", "-c", "256", *extra)
        check(r.returncode == 0, r.stderr)
        return r.stdout[len(prompt):-1]

    base, full, half = run(), run("--lora", adapter), run("--lora", adapter, "--lora-scale", "0.5")
    check(len({base, full, half}) == 3, f"the adapter must change the text: {base!r} {full!r} {half!r}")
    with Server("-m", ft.BASE, "--lora", adapter, "-P", "2", "-c", "256") as s:
        def complete(extra):
            status, _, body = s.json("POST", "/v1/completions",
                                     {"prompt": prompt, "max_tokens": n, "temperature": 0, **extra})
            check(status == 200, f"{extra}: {status} {body}")
            return body["choices"][0]["text"]

        status, _, listed = s.json("GET", "/lora-adapters")
        check(status == 200 and listed == [{"id": 0, "path": adapter, "scale": 1.0}], f"{status} {listed}")
        check(complete({}) == full, "the server's default scale (1)")
        check(complete({"lora": []}) == base, "an empty list turns the adapter off")
        check(complete({"lora": [{"id": 0, "scale": 0.5}]}) == half, "scale 0.5")
        check(complete({"lora": [{"id": 0, "scale": 1}]}) == full, "scale 1 after 0.5 (a slot's cache is not reused)")
        for _ in range(2):  # both slots busy at once, one with the adapter and one without
            got = {}
            ts = [threading.Thread(target=lambda k=k, e=e: got.__setitem__(k, complete(e)))
                  for k, e in (("with", {"lora": [{"id": 0, "scale": 1}]}), ("without", {"lora": []}))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            check(got == {"with": full, "without": base}, f"batched: {got}")
        status, _, listed = s.json("POST", "/lora-adapters", [{"id": 0, "scale": 0.5}])
        check(status == 200 and listed[0]["scale"] == 0.5, f"{status} {listed}")
        check(complete({}) == half, "the default scale set by POST /lora-adapters")
        for bad, code in (({"lora": [{"id": 1, "scale": 1}]}, "invalid_value"), ({"lora": "on"}, "invalid_type"),
                          ({"lora": [{"id": 0}]}, "invalid_type"), ({"lora": [{"id": 0, "scale": 1e9}]}, None)):
            status, _, data = s.request("POST", "/v1/completions", {"prompt": prompt, "max_tokens": 1, **bad})
            check_error_body(status, data, 400, "lora", code)
        status, _, data = s.request("POST", "/lora-adapters", [{"id": 3, "scale": 1}])
        check_error_body(status, data, 400, "lora", "invalid_value")


if __name__ == "__main__":
    ft.setup()
    run_all(globals())
