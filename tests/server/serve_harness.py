"""Starting `edgelm serve` for the end-to-end tests, and plain-HTTP helpers.

Every socket has a timeout (hang protection, not a speed limit) and the server process is always
ended by the context manager, also when a test fails."""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cli"))
from harness import BIN, SRC, check, edgelm, run_all  # noqa: E402,F401

SOCKET_TIMEOUT = 120  # seconds a single HTTP exchange may stall before the test gives up
START_TIMEOUT = 120


class Server:
    """`with Server("-P", "2") as s:` starts the server on a free loopback port."""

    def __init__(self, *args):
        self.args = ["serve", "--port", "0", *args]
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix="edgelm-serve-", suffix=".log", delete=False)
        self.port = None

    def __enter__(self):
        self.proc = subprocess.Popen([BIN, *self.args], stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while self.port is None:
                text = self.log_text()
                m = re.search(r"listening on http://[^:]+:(\d+)", text)
                if m:
                    self.port = int(m.group(1))
                    break
                if self.proc.poll() is not None:
                    raise AssertionError(f"edgelm serve exited with {self.proc.returncode}:\n{text}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"edgelm serve did not start:\n{text}")
                time.sleep(0.05)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        text = self.log_text() if os.path.exists(self.log.name) else ""
        try:
            os.unlink(self.log.name)
        except OSError:
            pass
        # Under a sanitizer build, a report in the server's output fails the test.
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in text:
                raise AssertionError(f"the server reported '{marker}':\n{text[-4000:]}")

    def log_text(self):
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def conn(self, timeout=SOCKET_TIMEOUT):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=SOCKET_TIMEOUT):
        """Returns (status, headers dict with lower-case names, body bytes)."""
        c = self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            h = {"Content-Type": "application/json"} if body is not None else {}
            h.update(headers or {})
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None):
        status, h, data = self.request(method, path, body, headers)
        return status, h, json.loads(data)

    def metrics(self):
        status, _, data = self.request("GET", "/metrics")
        check(status == 200, f"/metrics answered {status}")
        values = {}
        for line in data.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
        return values

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc status")

    def wait_for(self, what, predicate, timeout=60):
        """Polls predicate() (hang protection: gives up after `timeout` s)."""
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}")
            time.sleep(0.05)


def read_head(sock, n=12):
    """The first n bytes of the server's answer ("HTTP/1.1 200"); fewer if it closes first."""
    head = b""
    while len(head) < n:
        more = sock.recv(64)
        if not more:
            break
        head += more
    return head[:n]


def check_error_body(status, data, want_status, want_param=None, want_code=None):
    check(status == want_status, f"expected HTTP {want_status}, got {status}: {data[:300]!r}")
    body = json.loads(data)
    err = body.get("error")
    check(isinstance(err, dict), f"no error object in {body}")
    for k in ("message", "type", "param", "code"):
        check(k in err, f"error object lacks '{k}': {err}")
    check(isinstance(err["message"], str) and err["message"], f"empty error message: {err}")
    if want_param is not None:
        check(err["param"] == want_param, f"param {err['param']!r} != {want_param!r} in {err}")
    if want_code is not None:
        check(err["code"] == want_code, f"code {err['code']!r} != {want_code!r} in {err}")
    return err


def sse_events(raw):
    """Splits an event-stream body into its events' data strings, checking the framing."""
    text = raw.decode("utf-8")
    check(text.endswith("\n\n"), f"stream does not end with a blank line: {text[-80:]!r}")
    events = text[:-2].split("\n\n")
    out = []
    for ev in events:
        check(ev.startswith("data: ") and "\n" not in ev, f"bad SSE event {ev[:120]!r}")
        out.append(ev[len("data: "):])
    return out
