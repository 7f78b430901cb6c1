"""`edgelm convert` and `edgelm export --hf` end to end on the tiny checkpoints of
tests/fixtures/convert (tests/convert/ checks the converted files against the oracles)."""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, check, edgelm, run_all  # noqa: E402

FIXTURES = os.path.join(SRC, "tests", "fixtures", "convert")
TMP = tempfile.mkdtemp(prefix="edgelm-cli-convert-")


def one_line_error(r, want):
    check(r.returncode != 0, f"exit code 0:\n{r.stdout}")
    lines = r.stderr.strip().splitlines()
    check(len(lines) == 1 and lines[0].startswith("error: ") and want in lines[0], r.stderr)


def test_convert_then_info_and_run():
    out = os.path.join(TMP, "gemma3-q8.gguf")
    r = edgelm("convert", os.path.join(FIXTURES, "gemma3"), out, "--type", "q8_0")
    check(r.returncode == 0, r.stderr)
    check("wrote" in r.stdout and "gemma3" in r.stdout and "q8_0" in r.stdout, r.stdout)
    check("\r" not in r.stderr, "progress must stay off when stderr is not a terminal")
    info = edgelm("info", out)
    check(info.returncode == 0 and "gemma3" in info.stdout and "Q8_0" in info.stdout, info.stdout + info.stderr)
    gen = edgelm("run", "-m", out, "-p", "hello", "-n", "4", "--temp", "0", "-t", "1")
    check(gen.returncode == 0, gen.stderr)


def test_export_hf_then_convert_again():
    f32 = os.path.join(TMP, "llama-f32.gguf")
    check(edgelm("convert", os.path.join(FIXTURES, "llama"), f32, "-t", "f32").returncode == 0, "convert failed")
    hf = os.path.join(TMP, "llama-hf")
    r = edgelm("export", "-m", f32, "--hf", hf)
    check(r.returncode == 0, r.stderr)
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]:
        check(os.path.exists(os.path.join(hf, f)), f"{f} missing")
    check(json.load(open(os.path.join(hf, "config.json")))["architectures"] == ["LlamaForCausalLM"], "config.json")
    again = os.path.join(TMP, "again.gguf")
    r = edgelm("convert", hf, again, "-t", "f32")
    check(r.returncode == 0, r.stderr)


def test_bad_input_gives_one_line_errors():
    llama = os.path.join(FIXTURES, "llama")
    one_line_error(edgelm("convert", os.path.join(TMP, "missing"), os.path.join(TMP, "x.gguf")), "not a directory")
    one_line_error(edgelm("convert", llama, os.path.join(TMP, "x.gguf"), "--type", "q9"), "unknown output type 'q9'")
    bad = os.path.join(TMP, "bad")
    shutil.copytree(llama, bad)
    with open(os.path.join(bad, "model.safetensors"), "r+b") as f:
        f.write((1 << 40).to_bytes(8, "little"))
    one_line_error(edgelm("convert", bad, os.path.join(TMP, "x.gguf")), "does not fit in a file")
    cfg = json.load(open(os.path.join(llama, "config.json")))
    cfg["architectures"] = ["GPT2LMHeadModel"]
    shutil.copy(os.path.join(llama, "model.safetensors"), os.path.join(bad, "model.safetensors"))
    json.dump(cfg, open(os.path.join(bad, "config.json"), "w"))
    one_line_error(edgelm("convert", bad, os.path.join(TMP, "x.gguf")), "architecture 'GPT2LMHeadModel' is not supported")
    check(not os.path.exists(os.path.join(TMP, "x.gguf")), "a failed convert left a file")
    one_line_error(edgelm("export", "-m", os.path.join(TMP, "missing.gguf"), "--hf", os.path.join(TMP, "h")),
                   "missing.gguf")
    q8 = os.path.join(TMP, "llama-q8.gguf")
    check(edgelm("convert", llama, q8, "-t", "q8_0").returncode == 0, "convert failed")
    one_line_error(edgelm("export", "-m", q8, "--hf", os.path.join(TMP, "h")), "float weights only")


if __name__ == "__main__":
    try:
        run_all(dict(globals()))
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
