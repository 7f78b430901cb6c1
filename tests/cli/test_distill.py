"""`edgelm distill` end to end on the tiny synthetic llama of test_finetune.py as the teacher: the
pruned student, its training on the distillation loss with the teacher's distributions cached,
the cache read back by a second run (the same student, byte for byte), the lineage in `edgelm
info`, the student running; and bad input."""
import filecmp
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_finetune as ft  # noqa: E402
from harness import check, edgelm, run_all  # noqa: E402

TEXT = " ".join([
    "The lighthouse keeper climbed the stairs at dusk to light the lamp, as she had every evening for years.",
    "Ships passed the point in the night, and their crews looked for the light before they looked for anything else.",
    "In winter the wind came from the north and the sea rose against the rock below the tower.",
    "In summer the keeper painted the rails, mended the roof and wrote the weather in her book each morning.",
] * 6)


def write(name, text):
    path = os.path.join(ft.TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_distill_prunes_trains_caches_and_records_its_lineage():
    train, val = write("kd-train.txt", TEXT), write("kd-val.txt", TEXT[: len(TEXT) // 3])
    out, again, cache = (os.path.join(ft.TMP, n) for n in ("student.gguf", "student-again.gguf", "teacher.kd"))
    common = ["-t", ft.BASE, "--prune-layers", "1", "--train", train, "--val", val, "--ctx", "32", "--batch", "4",
              "--epochs", "3", "--lr", "3e-3", "--kd-top-k", "16", "--kd-cache", cache, "--threads", "2",
              "--out-type", "f32"]
    r = edgelm("distill", *common, "-o", out)
    check(r.returncode == 0, r.stderr)
    check("dropping blocks" in r.stdout and "(2 of 3 kept)" in r.stdout, r.stdout)
    check(os.path.exists(cache), "the teacher cache was not written")
    line = [l for l in r.stdout.splitlines() if l.startswith("validation loss")][0]
    before, after = float(line.split()[2]), float(line.split()[4])
    check(after < before, f"validation loss {before} -> {after}")
    stamp = os.stat(cache).st_mtime_ns
    r = edgelm("distill", *common, "-o", again)
    check(r.returncode == 0, r.stderr)
    check(os.stat(cache).st_mtime_ns == stamp, "the second run wrote the cache again instead of reading it")
    check(filecmp.cmp(out, again, shallow=False), "the cached teacher gave another student")
    r = edgelm("info", out)
    check(r.returncode == 0, r.stderr)
    check("layers        2" in r.stdout, r.stdout)
    check("distilled     from" in r.stdout and "of its 3 dropped" in r.stdout, r.stdout)
    check("forward_kl, alpha 0.5, T 3 (T^2 factor), teacher's top 16 words" in r.stdout, r.stdout)
    r = edgelm("run", "-m", out, "-p", "The keeper", "-n", "4", "--temp", "0")
    check(r.returncode == 0, r.stderr)
    # untrained: the pruned teacher as it is
    pruned = os.path.join(ft.TMP, "pruned.gguf")
    r = edgelm("distill", "-t", ft.BASE, "--prune-layers", "2", "--train", train, "--epochs", "0", "-o", pruned)
    check(r.returncode == 0 and "not trained" in r.stdout, r.stdout + r.stderr)
    r = edgelm("info", pruned)
    check("layers        1" in r.stdout and "not trained since the pruning" in r.stdout, r.stdout)


def test_distill_bad_input_is_one_line():
    train = write("kd-bad-train.txt", TEXT)
    out = os.path.join(ft.TMP, "never-student.gguf")
    # a cache made by another teacher: the pruned model of the test above stands in for one
    other_cache = os.path.join(ft.TMP, "other.kd")
    pruned = os.path.join(ft.TMP, "other-teacher.gguf")
    r = edgelm("distill", "-t", ft.BASE, "--prune-layers", "1", "--train", train, "--epochs", "0", "-o", pruned)
    check(r.returncode == 0, r.stderr)
    r = edgelm("distill", "-t", pruned, "--prune-layers", "1", "--train", train, "--ctx", "32", "--epochs", "1",
               "--kd-cache", other_cache, "-o", os.path.join(ft.TMP, "tiny-student.gguf"))
    check(r.returncode == 0, r.stderr)
    cases = [
        (["--prune-layers", "3"], "cannot drop 3 of the teacher's 3 blocks"),
        ([], "choose the student"),
        (["--student-config", "s.json"], "--student-config"),
        (["--prune-layers", "1", "--kd-cache", other_cache], "was made by another teacher"),
        (["--prune-layers", "1", "--kd-alpha", "2"], "--kd-alpha"),
    ]
    for args, want in cases:
        r = edgelm("distill", "-t", ft.BASE, "--train", train, "--ctx", "32", *args, "-o", out)
        check(r.returncode != 0, f"{args}: exit 0")
        check(want in r.stderr, f"{args}: '{want}' not in {r.stderr!r}")
        check(r.stderr.strip().count("\n") == 0, f"{args}: more than one line: {r.stderr!r}")
    check(not os.path.exists(out), "a failed run must not write the output")


if __name__ == "__main__":
    ft.setup()
    run_all(globals())
