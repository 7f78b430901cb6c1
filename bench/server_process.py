"""Starting `edgelm serve` for the server benchmarks (serve-load.py, soak.py)."""
import re
import subprocess
import sys
import tempfile
import time


def start_server(binary, args, log_prefix="edgelm-bench-", start_timeout=120):
    """Starts `BINARY serve --port 0 ARGS` with its output in a temporary log and waits until it
    listens. Returns (process, port, log path); exits with the log if it does not start."""
    log = tempfile.NamedTemporaryFile(prefix=log_prefix, suffix=".log", delete=False)
    proc = subprocess.Popen([binary, "serve", "--port", "0", *args], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + start_timeout
    while True:
        with open(log.name, errors="replace") as f:
            text = f.read()
        m = re.search(r"listening on http://[^:]+:(\d+)", text)
        if m:
            return proc, int(m.group(1)), log.name
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"error: edgelm serve did not start:\n{text}")
        time.sleep(0.05)
