"""A tiny test harness for the end-to-end tests that drive the `edgelm` binary.

Each test file defines functions named test_*; run_all() runs them, prints one line per test
and a closing 'N passed, N failed' line, and exits non-zero on any failure."""
import os
import subprocess
import sys
import traceback

BIN = os.environ.get("EDGELM_BIN", "edgelm")
SRC = os.environ.get("EDGELM_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def edgelm(*args, input=None, timeout=None, env=None):
    """Runs the binary with stdin from `input` (a pipe), returns CompletedProcess (text)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([BIN, *args], input=input, capture_output=True, text=True, env=e, timeout=timeout)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run_all(namespace):
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f"PASS {name}")
            passed += 1
        except Exception:  # noqa: BLE001 - report every failure, keep going
            print(f"FAIL {name}")
            traceback.print_exc()
            failed += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
