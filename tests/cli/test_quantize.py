"""`edgelm quantize`, `perplexity`, `imatrix` and `info` memory lines end to end, including bad
input and an interrupted quantize (killed mid-run: no file under the target name)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, SRC, check, edgelm, run_all  # noqa: E402

MODEL = os.path.join(os.environ.get("EDGELM_MODELS", os.path.expanduser("~/.cache/edgelm/models")),
                     "SmolLM2-135M-Instruct.Q4_1.gguf")
TEXT = os.path.join(SRC, "tests", "fixtures", "text", "essays.txt")
TMP = tempfile.mkdtemp(prefix="edgelm-cli-quant-")


def test_quantize_prints_summary_and_notes():
    out = os.path.join(TMP, "q8.gguf")
    r = edgelm("quantize", MODEL, out, "q8_0", "-t", "2")
    check(r.returncode == 0, r.stderr)
    check("already quantized" in r.stderr, r.stderr)
    for want in ["ffn_down", "norm", "total", "Q4_1", "Q8_0", "wrote"]:
        check(want in r.stdout, f"'{want}' missing:\n{r.stdout}")
    check(r.stderr.count("\r") == 0, "progress must stay off when stderr is not a terminal")
    info = edgelm("info", out, "-c", "4096")
    check(info.returncode == 0, info.stderr)
    check("Q8_0" in info.stdout and "Q4_1" not in info.stdout, info.stdout)
    check("at 4096 tokens" in info.stdout and "90.00 MiB F16" in info.stdout and "47.81 MiB Q8_0" in info.stdout,
          info.stdout)


def test_keep_override_and_fallback_note():
    out = os.path.join(TMP, "keep.gguf")
    r = edgelm("quantize", MODEL, out, "Q4_K_M", "--keep", "blk.*.ffn_down.weight=Q8_0", "-t", "2")
    check(r.returncode == 0, r.stderr)
    check("fallback Q4_K -> Q5_0" in r.stderr, r.stderr)
    line = [l for l in r.stdout.splitlines() if l.startswith("ffn_down")][0]
    check(line.split()[3] == "Q8_0", line)


def test_a_cached_model_is_found_by_name():
    out = os.path.join(TMP, "by-name.gguf")
    for name in ("smollm2", "smollm2.gguf"):  # the names run, info and the others accept
        r = edgelm("quantize", name, out, "Q8_0", "-t", "2")
        check(r.returncode == 0, f"{name}: {r.stderr}")
        info = edgelm("info", out)
        check(info.returncode == 0 and "Q8_0" in info.stdout, info.stdout + info.stderr)


def test_bad_input_gives_one_line_errors():
    junk = os.path.join(TMP, "junk.gguf")
    with open(junk, "w") as f:
        f.write("not a model")
    cases = [
        (["quantize", MODEL, os.path.join(TMP, "x.gguf"), "Q4_K_S"], "unknown quantization type"),
        (["quantize", junk, os.path.join(TMP, "x.gguf"), "Q8_0"], "junk.gguf"),
        (["quantize", os.path.join(TMP, "missing.gguf"), os.path.join(TMP, "x.gguf"), "Q8_0"], "missing.gguf"),
        (["quantize", MODEL, os.path.join(TMP, "x.gguf"), "Q8_0", "--keep", "nonsense"], "GLOB=TYPE"),
        (["quantize", MODEL, os.path.join(TMP, "x.gguf"), "Q8_0", "--keep", "a=Q8_K"], "can write"),
        (["quantize", MODEL, os.path.join(TMP, "x.gguf"), "Q8_0", "--imatrix", junk], "junk.gguf"),
        (["perplexity", "-m", MODEL, "-f", os.path.join(TMP, "missing.txt")], "cannot open text file"),
        (["perplexity", "-m", MODEL, "-f", junk, "-c", "128"], "tokens"),
        (["imatrix", "-m", junk, "-f", TEXT], "junk.gguf"),
    ]
    for args, want in cases:
        r = edgelm(*args)
        check(r.returncode != 0, f"{args}: exit 0")
        lines = r.stderr.strip().splitlines()
        check(lines and lines[-1].startswith("error:") and want in lines[-1], f"{args}: {r.stderr!r}")
    check(not os.path.exists(os.path.join(TMP, "x.gguf")), "a failed run left an output file")


def test_killed_quantize_leaves_no_file():
    out = os.path.join(TMP, "killed.gguf")
    for delay in (0.3, 1.0, 2.0):
        p = subprocess.Popen([BIN, "quantize", MODEL, out, "Q4_K_M", "-t", "1"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if p.poll() is not None:
            continue
        p.send_signal(signal.SIGKILL)
        p.wait()
        check(not os.path.exists(out), f"killed after {delay}s: {out} exists")
    leftovers = [f for f in os.listdir(TMP) if f.startswith("killed.gguf")]
    print(f"  temporary files left by SIGKILL (never under the target name): {leftovers}")


def test_interrupted_quantize_leaves_nothing():
    # Ctrl-C or SIGTERM while the output is being written (Gemma 3 to F32: about 1 GB, so the
    # write lasts long enough to be caught): the process ends by the signal, and neither the
    # target nor its temporary file is left.
    gemma = os.path.join(os.path.dirname(MODEL), "gemma-3-270m-q4_k_m.gguf")
    d = tempfile.mkdtemp(prefix="edgelm-cli-quant-sig-")
    out = os.path.join(d, "g.gguf")
    for sig in (signal.SIGINT, signal.SIGTERM):
        for attempt in range(3):
            p = subprocess.Popen([BIN, "quantize", gemma, out, "F32", "-t", "1"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            while p.poll() is None and not any(".tmp." in f for f in os.listdir(d)):
                time.sleep(0.01)
            p.send_signal(sig)
            p.wait()
            if p.returncode == -sig:
                break
            check(p.returncode == 0, f"{sig.name}: exit {p.returncode}")
            os.remove(out)  # the write finished before the signal: try again
        else:
            check(False, f"{sig.name}: the write always finished before the signal")
        check(os.listdir(d) == [], f"{sig.name} left {os.listdir(d)}")
    shutil.rmtree(d)


def test_imatrix_then_quantize_with_it():
    im = os.path.join(TMP, "smol.imatrix.gguf")
    r = edgelm("imatrix", "-m", MODEL, "-f", TEXT, "-o", im, "-c", "64", "--chunks", "1", "-t", "2")
    check(r.returncode == 0, r.stderr)
    check("211 matrices" in r.stdout, r.stdout)
    out = os.path.join(TMP, "q4im.gguf")
    r = edgelm("quantize", MODEL, out, "Q4_0", "--imatrix", im, "-t", "2")
    check(r.returncode == 0, r.stderr)
    check("imatrix: 211 matrices" in r.stderr, r.stderr)


def test_perplexity_output_format():
    r = edgelm("perplexity", "-m", MODEL, "-f", TEXT, "-c", "64", "--chunks", "2", "-t", "2")
    check(r.returncode == 0, r.stderr)
    check("[1]" in r.stdout and "[2]" in r.stdout, r.stdout)
    line = [l for l in r.stdout.splitlines() if l.startswith("Final estimate: PPL = ")]
    check(len(line) == 1 and "+/-" in line[0], r.stdout)
    ppl = float(line[0].split()[4])
    check(5 < ppl < 200, line[0])


if __name__ == "__main__":
    try:
        run_all(dict(globals()))
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
