"""bench/edge-table.sh end to end on a small workload: SmolLM2-135M as shipped and a Q8_0 copy,
short prompts, one perplexity chunk and a CLINC150 head on a few intents (llama.cpp's columns
off: building it takes minutes). Every cell of the table is a measured number or says why not."""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, SRC, check, run_all  # noqa: E402

TMP = tempfile.mkdtemp(prefix="edgelm-cli-edge-")
SCRIPT = os.path.join(SRC, "bench", "edge-table.sh")


def small_clinc():
    """Six intents (oos among them) from the CLINC150 copy in data/: 6 train, 3 validation each."""
    d = os.path.join(TMP, "clinc")
    os.makedirs(d, exist_ok=True)
    keep = {"translate", "weather", "oos", "timer", "alarm", "greeting"}
    for split, n in (("train", 6), ("val", 3)):
        seen, out = {}, []
        for line in open(os.path.join(SRC, "data", "clinc150", f"{split}.jsonl")):
            intent = json.loads(line)["intent"]
            if intent in keep and seen.get(intent, 0) < n:
                seen[intent] = seen.get(intent, 0) + 1
                out.append(line)
        open(os.path.join(d, f"{split}.jsonl"), "w").writelines(out)
    return d


def table(*extra):
    env = dict(os.environ, EDGELM_BIN=BIN)
    return subprocess.run(["bash", SCRIPT, "--no-llamacpp", "--prompt", "8", "--gen", "4", "--reps", "1",
                           "--ctx", "64", "--chunks", "1", "--layers", "2", "--head-arg=--epochs=3", *extra],
                          capture_output=True, text=True, env=env)


def test_table_end_to_end():
    out = os.path.join(TMP, "run")
    md, png = os.path.join(TMP, "edge.md"), os.path.join(TMP, "edge.png")
    r = table("--model", "smollm2:Q8_0,input", "--clinc", small_clinc(), "--out", out, "--md", md, "--chart", png)
    check(r.returncode == 0, r.stderr)
    text = open(md).read()
    check(text == r.stdout.rstrip("\n") + "\n" or text in r.stdout, "the table printed is the table written")
    rows = [l for l in text.splitlines() if l.startswith("| SmolLM2-135M |")]
    check(len(rows) == 2, text)
    check([c.strip() for c in rows[0].split("|")[3:4]] == ["Q8_0"], rows[0])
    check([c.strip() for c in rows[1].split("|")[3:4]] == ["Q4_1"], rows[1])
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        check(len(cells) == 11, row)
        params, size, mem, rss, ttft, tok, ppl, clinc, joules = (cells[1], cells[3], cells[4], cells[5], cells[6],
                                                                 cells[7], cells[8], cells[9], cells[10])
        check(params == "135 M", row)
        for cell in (size, mem):
            check(re.fullmatch(r"\d+ MiB", cell) and int(cell.split()[0]) > 50, row)
        for cell in (rss, ttft, tok):
            check(re.fullmatch(r"[0-9.]+ / not run", cell) and float(cell.split()[0]) > 0, row)
        check(re.fullmatch(r"[0-9.]+ ± [0-9.]+", ppl) and 5 < float(ppl.split()[0]) < 1000, row)
        check(re.fullmatch(r"[0-9.]+ % / [0-9]+ %", clinc), row)
        check(re.fullmatch(r"[0-9.]+ / [0-9.]+ \(est\.\)", joules) or re.fullmatch(r"[0-9.]+ / [0-9.]+", joules), row)
    # Weights + INT8 KV: the Q8_0 copy is larger than the 4-bit file, and the measured RSS covers the weights.
    res = [json.loads(l) for l in open(os.path.join(out, "results.jsonl"))]
    check(res[0]["mem_int8kv_mib"] > res[1]["mem_int8kv_mib"], res)
    for row in res:
        check(row["peak_rss_kib"] * 1024 > row["file_bytes"] * 0.9, row)
        check(row["requantized"] == (row["type"] == "Q8_0"), row)
        check(row["energy_source"], row)
    check("estimate" in text or "RAPL" in text or "perf" in text, "the energy source is named")
    check("llama.cpp columns: not run" in text, text)
    check("quantize` copies" in text and "from Q4_1" in text, text)
    # The measurements are kept beside the table, and --render redraws the same table from them.
    again = os.path.join(TMP, "again.md")
    r = subprocess.run(["python3", os.path.join(SRC, "bench", "edge_table.py"), "--render", os.path.join(TMP, "edge.jsonl"),
                        "--md", again, "--chart", os.path.join(TMP, "again.png")], capture_output=True, text=True)
    check(r.returncode == 0, r.stderr)
    check(open(again).read() == text, "--render gives the same table")
    try:
        import matplotlib  # noqa: F401
        check(os.path.getsize(png) > 10000, "the chart is written")
    except ImportError:
        pass


def test_unknown_model_is_one_clear_error():
    r = table("--model", "no-such-model:input", "--clinc", "", "--out", os.path.join(TMP, "bad"))
    check(r.returncode != 0, r.stdout)
    check("error:" in r.stderr and "no-such-model" in r.stderr, r.stderr)
    check("Traceback" not in r.stderr, r.stderr)


if __name__ == "__main__":
    run_all(globals())
