#!/usr/bin/env python3
"""Soak test of `edgelm serve`: mixed traffic at 4x the slots for a while, watching the
server's memory, latency and answers over time.

Starts `edgelm serve -m MODEL --parallel P` on a free loopback port and runs 4 x P clients, each
sending one request after another: streaming chats, non-streaming completions, streams it
cancels after a few events, and bad requests (malformed JSON, a text/plain body, an unknown
model, an out-of-range field, an oversized Content-Length, an unknown route, a wrong method).
Every request must be answered with a success, a 4xx or a 503; a reset, a timeout, a 5xx other
than 503, or the server exiting is a failure. Samples the server's RSS every few seconds.

Writes <out>.json (every request and RSS sample), <out>.png (RSS, p50/p99 latency and answers by
status per window; needs matplotlib) and prints a Markdown summary. Exit status 1 on a failure.
  python3 bench/soak.py --duration 600 --out bench/results/2026-12-07-soak
"""
import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from server_process import start_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 120  # seconds one exchange may stall before it counts as a failure

PROMPTS = ["Give me two tips for better sleep.", "What is the capital of France?",
           "Write a haiku about the sea.", "Explain what a CPU cache is in one sentence.",
           "List three fruits.", "Why is the sky blue?"]

BAD = [  # (name, method, path, headers, body)
    ("malformed-json", "POST", "/v1/chat/completions", {"Content-Type": "application/json"}, b'{"messages": ['),
    ("text-plain", "POST", "/v1/completions", {"Content-Type": "text/plain"}, b'{"prompt": "hi"}'),
    ("unknown-model", "POST", "/v1/completions", {"Content-Type": "application/json"},
     b'{"model": "gpt-4o", "prompt": "hi", "max_tokens": 1}'),
    ("bad-field", "POST", "/v1/chat/completions", {"Content-Type": "application/json"},
     b'{"messages": [{"role": "user", "content": "hi"}], "temperature": -3}'),
    ("huge-length", "POST", "/v1/completions", {"Content-Type": "application/json",
                                                 "Content-Length": "99999999999"}, None),
    ("unknown-route", "GET", "/v1/nothing", {}, None),
    ("wrong-method", "GET", "/v1/chat/completions", {}, None),
]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


class Client:
    def __init__(self, port, rng):
        self.port = port
        self.rng = rng

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)

    def generation(self, stream, cancel):
        chat = self.rng.random() < 0.6
        body = {"max_tokens": self.rng.randint(8, 48), "temperature": 0.8, "stream": stream}
        if chat:
            body["messages"] = [{"role": "user", "content": self.rng.choice(PROMPTS)}]
            path = "/v1/chat/completions"
        else:
            body["prompt"] = self.rng.choice(PROMPTS)
            path = "/v1/completions"
        c = self.conn()
        try:
            c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            r = c.getresponse()
            if r.status != 200 or not stream:
                r.read()
                return r.status
            events = 0
            while True:
                line = r.fp.readline()
                if not line:
                    return -1  # the stream ended without [DONE]
                if line.startswith(b"data: "):
                    events += 1
                    if line.strip() == b"data: [DONE]":
                        return 200
                    if cancel and events >= 3:
                        return 200  # closing the connection here cancels the generation
        finally:
            c.close()

    def bad(self):
        name, method, path, headers, body = self.rng.choice(BAD)
        if name == "huge-length":  # raw: http.client would send the body it announces
            s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
            try:
                s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          f"Content-Length: 99999999999\r\n\r\n".encode())
                head = s.recv(64)
                m = re.match(rb"HTTP/1\.1 (\d{3})", head)
                return int(m.group(1)) if m else -1
            finally:
                s.close()
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def one(self):
        x = self.rng.random()
        if x < 0.35:
            return "stream", self.generation(stream=True, cancel=False)
        if x < 0.65:
            return "whole", self.generation(stream=False, cancel=False)
        if x < 0.80:
            return "cancel", self.generation(stream=True, cancel=True)
        return "bad", self.bad()


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def answered(status):
    return 200 <= status < 300 or 400 <= status < 500 or status == 503


def plot(rss, windows, window, title, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (scripts/install-deps.sh installs it)", file=sys.stderr)
        return
    rss_vals = [m for _, m in rss if m]
    fig, ax = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    ax[0].plot([t / 60 for t, m in rss if m], [m / 1024 for m in rss_vals])
    ax[0].set_ylabel("server RSS (MiB)")
    ax[0].set_ylim(0, max(rss_vals) / 1024 * 1.15 if rss_vals else 1)
    xs = [(wd["t"] + window / 2) / 60 for wd in windows]
    ax[1].plot(xs, [wd["p50"] for wd in windows], marker="o", label="p50")
    ax[1].plot(xs, [wd["p99"] for wd in windows], marker="o", label="p99")
    ax[1].set_ylabel("latency of a whole reply (s)")
    ax[1].legend()
    statuses = sorted({int(s) for wd in windows for s in wd["counts"]})
    bottom = [0] * len(windows)
    for s in statuses:
        ys = [wd["counts"].get(s, wd["counts"].get(str(s), 0)) for wd in windows]
        ax[2].bar(xs, ys, width=window / 60 * 0.8, bottom=bottom, label=str(s))
        bottom = [b + y for b, y in zip(bottom, ys)]
    ax[2].set_ylabel(f"answers per {window:.0f} s")
    ax[2].set_xlabel("minutes")
    ax[2].legend(title="HTTP status", ncol=max(1, len(statuses)), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("EDGELM_BIN", os.path.join(ROOT, "build/src/cli/edgelm")))
    ap.add_argument("-m", "--model", default="smollm2")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--clients", type=int, default=0, help="concurrent clients (default: 4 x --parallel)")
    ap.add_argument("--duration", type=float, default=600, help="seconds of traffic")
    ap.add_argument("--window", type=float, default=30, help="seconds per point of the plot")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/soak"), help="output path without extension")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replot", metavar="JSON", help="only redraw the plot of an earlier run's JSON (to --out)")
    ap.add_argument("serve_args", nargs="*", help="more `edgelm serve` arguments (after --)")
    a = ap.parse_args()
    if a.replot:
        with open(a.replot) as f:
            d = json.load(f)
        sm = d["summary"]
        plot(d["rss"], sm["windows"], sm.get("window_s", a.window),
             f"edgelm serve -m {sm['model']} --parallel {sm['parallel']}, {sm['clients']} clients, mixed traffic",
             a.out + ".png")
        return 0
    n_clients = a.clients or 4 * a.parallel

    proc, port, log_path = start_server(a.bin, ["-m", a.model, "--parallel", str(a.parallel), *a.serve_args],
                                        log_prefix="edgelm-soak-")
    t0 = time.monotonic()
    end = t0 + a.duration
    records, rss, lock = [], [], threading.Lock()
    stop = threading.Event()

    def sample_rss():
        while not stop.is_set():
            if proc.poll() is None:
                rss.append((time.monotonic() - t0, rss_kib(proc.pid)))
            stop.wait(5)

    def client(i):
        cl = Client(port, random.Random(a.seed * 1000 + i))
        while time.monotonic() < end and proc.poll() is None:
            start = time.monotonic()
            try:
                kind, status = cl.one()
                error = None
            except (OSError, http.client.HTTPException) as e:
                kind, status, error = "?", -1, repr(e)
            with lock:
                records.append({"t": start - t0, "kind": kind, "status": status,
                                "latency": time.monotonic() - start, "error": error})

    sampler = threading.Thread(target=sample_rss)
    sampler.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    last_print = t0
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        if sys.stderr.isatty() and time.monotonic() - last_print >= 10:
            last_print = time.monotonic()
            print(f"\r{time.monotonic() - t0:6.0f} s  {len(records)} requests  RSS {rss[-1][1] / 1024:.0f} MiB",
                  end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    for t in threads:
        t.join()
    alive = proc.poll() is None
    health = None
    if alive:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        c.request("GET", "/health")
        r = c.getresponse()
        health = json.loads(r.read())
        c.close()
        rss.append((time.monotonic() - t0, rss_kib(proc.pid)))
    stop.set()
    sampler.join()
    proc.send_signal(signal.SIGINT)
    try:
        exit_code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        exit_code = proc.wait()
    server_log = open(log_path, errors="replace").read()
    os.unlink(log_path)

    # Summary.
    by_status, by_kind = {}, {}
    for r in records:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
        k = by_kind.setdefault(r["kind"], {})
        k[r["status"]] = k.get(r["status"], 0) + 1
    failures = [r for r in records if not answered(r["status"])]
    lat = {k: [r["latency"] for r in records if r["kind"] == k and r["status"] == 200] for k in ("stream", "whole")}
    windows = []
    w = 0.0
    while w < a.duration:
        rs = [r for r in records if w <= r["t"] < w + a.window]
        ok = [r["latency"] for r in rs if r["kind"] in ("stream", "whole") and r["status"] == 200]
        counts = {}
        for r in rs:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        mem = [m for t, m in rss if w <= t < w + a.window and m]
        windows.append({"t": w, "p50": percentile(ok, 50), "p99": percentile(ok, 99), "counts": counts,
                        "rss_mib": (sum(mem) / len(mem) / 1024) if mem else float("nan")})
        w += a.window
    rss_vals = [m for _, m in rss if m]
    warm = next((m for t, m in rss if m and t >= min(60.0, a.duration / 10)), None)
    summary = {
        "model": a.model, "parallel": a.parallel, "clients": n_clients, "duration_s": a.duration, "window_s": a.window,
        "requests": len(records), "by_status": {str(k): v for k, v in sorted(by_status.items())},
        "by_kind": {k: {str(s): n for s, n in sorted(v.items())} for k, v in by_kind.items()},
        "failures": len(failures), "failure_examples": failures[:5],
        "server_alive_at_end": alive, "health_at_end": health, "server_exit_code": exit_code,
        "rss_mib_start": rss_vals[0] / 1024 if rss_vals else None,
        "rss_mib_end": rss_vals[-1] / 1024 if rss_vals else None,
        "rss_mib_max": max(rss_vals) / 1024 if rss_vals else None,
        # The weights are mapped from the file and count once touched: the first minute warms up.
        "rss_mib_after_warmup": warm / 1024 if warm else None,
        "latency_s": {k: {"p50": percentile(v, 50), "p99": percentile(v, 99), "n": len(v)} for k, v in lat.items()},
        "windows": windows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out + ".json", "w") as f:
        json.dump({"summary": summary, "rss": rss, "requests": records}, f, indent=1)

    plot(rss, windows, a.window, f"edgelm serve -m {a.model} --parallel {a.parallel}, {n_clients} clients, mixed traffic",
         a.out + ".png")

    print(f"| requests | {len(records)} in {a.duration:.0f} s, {n_clients} clients |")
    print("|---|---|")
    print("| by status | " + ", ".join(f"{k}: {v}" for k, v in sorted(by_status.items())) + " |")
    for k, v in sorted(by_kind.items()):
        print(f"| {k} | " + ", ".join(f"{s}: {n}" for s, n in sorted(v.items())) + " |")
    for k, v in summary["latency_s"].items():
        print(f"| latency {k} (200) | p50 {v['p50']:.2f} s, p99 {v['p99']:.2f} s (n = {v['n']}) |")
    if rss_vals:
        drift = (rss_vals[-1] - rss_vals[0]) / rss_vals[0] * 100
        print(f"| RSS | start {rss_vals[0] / 1024:.1f} MiB, end {rss_vals[-1] / 1024:.1f} MiB ({drift:+.1f} %), "
              f"max {max(rss_vals) / 1024:.1f} MiB |")
        if warm:
            print(f"| RSS after warm-up | {warm / 1024:.1f} MiB -> end {rss_vals[-1] / 1024:.1f} MiB "
                  f"({(rss_vals[-1] - warm) / warm * 100:+.1f} %) |")
    print(f"| failures | {len(failures)} (reset, timeout, 5xx other than 503) |")
    print(f"| server | {'alive' if alive else 'EXITED'} at the end, health {health}, exit code {exit_code} after SIGINT |")
    bad = failures or not alive
    if bad:
        print(server_log[-3000:], file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
