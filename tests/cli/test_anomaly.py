"""End-to-end tests of `edgelm anomaly` and `edgelm nab-score` (run: EDGELM_BIN=... python3 test_anomaly.py)."""
import json
import math
import os
import shutil
import select
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, check, edgelm, run_all  # noqa: E402


def series_csv(rows=1200, spike_at=1000):
    """A daily rhythm sampled every five minutes, with one big spike."""
    lines = ["timestamp,value"]
    for i in range(rows):
        t = 1396310400 + 300 * i  # 2014-04-01
        v = 10 + 3 * math.sin(2 * math.pi * i / 288) + 0.3 * math.sin(i * 1.7)
        if i == spike_at:
            v += 25
        stamp = "%04d-%02d-%02d %02d:%02d:00" % (2014, 4, 1 + (t - 1396310400) // 86400,
                                                  (t // 3600) % 24, (t // 60) % 60)
        lines.append("%s,%.3f" % (stamp, v))
    return "\n".join(lines) + "\n"


TMP = tempfile.mkdtemp(prefix="edgelm-cli-anomaly-")


def write_temp(text, suffix=".csv"):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False, dir=TMP)
    f.write(text)
    f.close()
    return f.name


def test_scores_a_small_csv():
    path = write_temp(series_csv())
    r = edgelm("anomaly", path)
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr}")
    lines = r.stdout.splitlines()
    check(lines[0] == "timestamp,value,score,label", lines[0])
    check(len(lines) == 1201, f"{len(lines)} lines")
    rows = [l.split(",") for l in lines[1:]]
    check(all(len(x) == 4 and x[3] in ("anomaly", "normal") for x in rows), "malformed output row")
    check(all(0.0 <= float(x[2]) <= 1.0 for x in rows), "score out of [0,1]")
    check(rows[1000][3] == "anomaly", f"spike row not flagged: {rows[1000]}")
    check(sum(x[3] == "anomaly" for x in rows[300:1000]) == 0, "alarms on the learned rhythm")
    check("anomaly rate" in r.stderr and "1200 rows" in r.stderr, r.stderr)


def test_reads_standard_input():
    text = series_csv(400, spike_at=10**9)
    r = edgelm("anomaly", "-", input=text)
    check(r.returncode == 0, r.stderr)
    check(len(r.stdout.splitlines()) == 401, "row count")


def test_streams_one_line_per_line():
    # Each row must come out before the next one goes in (a sensor pipeline). Output is read
    # from the raw pipe (no Python-side buffering), so select() sees exactly what was written.
    p = subprocess.Popen([BIN, "anomaly", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, bufsize=0)
    fd = p.stdout.fileno()
    pending = b""

    def next_line():
        nonlocal pending
        while b"\n" not in pending:
            ready, _, _ = select.select([fd], [], [], 30)  # hang protection, not a speed limit
            check(ready, "no output for a row while stdin is still open")
            chunk = os.read(fd, 4096)
            check(chunk, "unexpected end of output")
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        return line.decode()

    try:
        p.stdin.write(b"timestamp,value\n")
        check(next_line().startswith("timestamp,value,score"), "header")
        for i in range(3):
            p.stdin.write(b"%d,%d\n" % (1000 + 60 * i, i))
            line = next_line()
            check(line.startswith("%d,%d," % (1000 + 60 * i, i)), line)
            check(pending == b"", "more output than one row per row")
    finally:
        p.stdin.close()
        p.wait()
    check(p.returncode == 0, p.stderr.read().decode())


def expect_error(text, *fragments):
    r = edgelm("anomaly", "-", input=text)
    check(r.returncode == 1, f"exit {r.returncode}")
    err = r.stderr.strip()
    check(len(err.splitlines()) == 1, f"error not on one line: {err!r}")
    check(err.startswith("error: <stdin>:"), err)
    for frag in fragments:
        check(frag in err, f"{frag!r} not in {err!r}")
    check("Traceback" not in err and "terminate" not in err, err)


def test_malformed_non_numeric_value():
    expect_error("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n", ":3:", "not a finite number")


def test_malformed_missing_column():
    expect_error("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00\n", ":3:", "expected 2 columns")


def test_malformed_unsorted_timestamps():
    expect_error("timestamp,value\n2014-04-01 00:10:00,1\n2014-04-01 00:05:00,2\n", ":3:", "line 2", "sorted")


def device_csv(rows=1600, bad_channel=2, shift_at=1200):
    """Three sensors of one device sampled every five minutes; one channel shifts at shift_at."""
    lines = ["timestamp,temp,pressure,vibration"]
    for i in range(rows):
        day = 2 * math.pi * i / 288
        v = [20 + 3 * math.sin(day) + 0.3 * math.sin(i * 1.7),
             1000 - 50 * math.sin(day) + 5 * math.sin(i * 2.3),
             0.5 + 0.05 * math.sin(i * 0.9)]
        if i >= shift_at:
            v[bad_channel] += [2.0, 40.0, 0.5][bad_channel]
        lines.append("%d,%.4f,%.4f,%.4f" % (1396310400 + 300 * i, v[0], v[1], v[2]))
    return "\n".join(lines) + "\n"


def test_several_value_columns_give_one_score():
    r = edgelm("anomaly", "-", input=device_csv())
    check(r.returncode == 0, r.stderr)
    lines = r.stdout.splitlines()
    check(lines[0] == "timestamp,temp,pressure,vibration,score,label", lines[0])
    rows = [l.split(",") for l in lines[1:]]
    check(len(rows) == 1600 and all(len(x) == 6 for x in rows), "malformed output rows")
    check(rows[0][1:4] == ["20.0000", "1000.0000", "0.5000"], rows[0])
    check(any(x[5] == "anomaly" for x in rows[1200:1264]), "shift in the third channel not flagged within two blocks")
    check("3 value columns" in r.stderr, r.stderr)


def test_bad_multi_column_files():
    expect_error("timestamp,a,b\n0,1,2\n300,3\n", ":3:", "expected 3 columns (timestamp,a,b), found 2")
    expect_error("timestamp,a,b\n0,1,2\n300,3,x\n", ":3:", "value 'x' in column 'b' is not a finite number")
    expect_error("timestamp\n0\n", ":1:", "no value column")
    r = edgelm("anomaly", "-", input="timestamp,a,b,c,d\n0,1,2,3,4\n")
    check(r.returncode == 1 and "4 value columns; the detector takes at most 3" in r.stderr
          and len(r.stderr.strip().splitlines()) == 1, r.stderr)


def test_config_file_and_bad_config():
    cfg = write_temp(json.dumps({"rest_period": 50, "alarm_threshold": 0.3}), ".json")
    r = edgelm("anomaly", "--config", cfg, "--dump-config")
    check(r.returncode == 0, r.stderr)
    dumped = json.loads(r.stdout)
    check(dumped["rest_period"] == 50 and abs(dumped["alarm_threshold"] - 0.3) < 1e-6, r.stdout)
    bad = write_temp(json.dumps({"rest_periods": 50}), ".json")
    r = edgelm("anomaly", "--config", bad, "-", input="0,1\n")
    check(r.returncode == 1 and "unknown detector config field 'rest_periods'" in r.stderr, r.stderr)


def test_set_takes_one_field_and_leaves_the_file_name_alone():
    data = write_temp(series_csv(rows=400, spike_at=300))
    r = edgelm("anomaly", "--set", "rest_period=50", "--set", "alarm_threshold=0.3", data)
    check(r.returncode == 0, r.stderr)
    check(len(r.stdout.strip().splitlines()) == 401, f"{len(r.stdout.splitlines())} lines")
    r = edgelm("anomaly", "--set", "rest_period=50", "--set", "alarm_threshold=0.3", "--dump-config")
    dumped = json.loads(r.stdout)
    check(dumped["rest_period"] == 50 and abs(dumped["alarm_threshold"] - 0.3) < 1e-6, r.stdout)
    r = edgelm("anomaly", "--set", "rest_period", data)
    check(r.returncode == 2 and "'rest_period' is not FIELD=VALUE" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
          r.stderr)


def test_state_carries_a_series_over_two_runs():
    text = series_csv()
    header, rows = text.splitlines()[0], text.splitlines()[1:]
    halves = [write_temp("\n".join([header] + part) + "\n") for part in (rows[:601], rows[601:])]
    state = os.path.join(TMP, "series.state")
    first = edgelm("anomaly", "--state", state, "--set", "rest_period=400", halves[0])
    check(first.returncode == 0 and os.path.exists(state), first.stderr)
    check("601 samples seen, saved to " + state in first.stderr, first.stderr)
    # The configuration travels with the state.
    r = edgelm("anomaly", "--state", state, "--dump-config")
    check(r.returncode == 0 and json.loads(r.stdout)["rest_period"] == 400, r.stdout + r.stderr)
    second = edgelm("anomaly", "--state", state, halves[1])
    check(second.returncode == 0, second.stderr)
    check("1200 samples seen" in second.stderr, second.stderr)
    whole = edgelm("anomaly", "--set", "rest_period=400", write_temp(text))
    check(whole.returncode == 0, whole.stderr)
    resumed = first.stdout.splitlines() + second.stdout.splitlines()[1:]
    check(resumed == whole.stdout.splitlines(), "two runs through --state differ from one run over the whole series")
    check(resumed[1001].endswith(",anomaly"), resumed[1001])
    # Once the state exists, its configuration cannot be changed.
    r = edgelm("anomaly", "--state", state, "--set", "rest_period=50", halves[1])
    check(r.returncode == 1 and "--config and --set cannot change it" in r.stderr
          and len(r.stderr.strip().splitlines()) == 1, r.stderr)
    # A file of other columns than the state's detector scores.
    r = edgelm("anomaly", "--state", state, "-", input=device_csv(rows=20))
    check(r.returncode == 1 and "3 value columns, but the detector in " + state + " scores 1" in r.stderr, r.stderr)


def test_corrupt_state_is_a_one_line_error():
    data = write_temp(series_csv(rows=300, spike_at=10**9))
    state = os.path.join(TMP, "corrupt.state")
    check(edgelm("anomaly", "--state", state, data).returncode == 0, "first run failed")
    with open(state, "rb") as f:
        good = f.read()
    cases = [(good[:100] + bytes([good[100] ^ 1]) + good[101:], "checksum mismatch"),
             (good[:-7], "truncated"),
             (b"not a state at all" * 4, "wrong magic")]
    for content, fragment in cases:
        with open(state, "wb") as f:
            f.write(content)
        r = edgelm("anomaly", "--state", state, data)
        err = r.stderr.strip()
        check(r.returncode == 1 and len(err.splitlines()) == 1 and err.startswith("error: " + state + ": "), err)
        check(fragment in err and ("run the detector from the start" in err or "start afresh" in err), err)
        check(r.stdout == "", "rows scored from a corrupt state")
        with open(state, "rb") as f:
            check(f.read() == content, "a refused state file was overwritten")
    r = edgelm("anomaly", "--state", os.path.join(TMP, "no-such-folder", "x.state"), data)
    check(r.returncode == 1 and "does not exist" in r.stderr, r.stderr)


def test_nab_score_on_a_tiny_folder():
    with tempfile.TemporaryDirectory(prefix="edgelm-cli-nab-") as root:
        nab_score_on(root)


def nab_score_on(root):
    os.makedirs(os.path.join(root, "data", "demo"))
    os.makedirs(os.path.join(root, "labels"))
    with open(os.path.join(root, "data", "demo", "spiky.csv"), "w") as f:
        f.write(series_csv())
    with open(os.path.join(root, "labels", "combined_windows.json"), "w") as f:
        json.dump({"demo/spiky.csv": [["2014-04-04 10:40:00.000000", "2014-04-04 11:40:00.000000"]]}, f)
    r = edgelm("nab-score", root, "--files")
    check(r.returncode == 0, r.stderr)
    for word in ("standard", "reward_low_FP_rate", "reward_low_FN_rate", "demo/spiky.csv", "time per sample"):
        check(word in r.stdout, f"{word} missing from:\n{r.stdout}")
    r = edgelm("nab-score", os.path.join(root, "missing"))
    check(r.returncode == 1 and r.stderr.startswith("error: "), r.stderr)


if __name__ == "__main__":
    try:
        run_all(dict(globals()))
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
