#!/usr/bin/env python3
"""Aggregate generation throughput of `edgelm serve` with 1, 2 and 4 slots.

For each slot count N it starts the server on a free loopback port, keeps N clients busy (each
sends --requests completions one after another, greedy, --max-tokens long) and reports the
generated tokens over the wall time, plus the mean decode batch from /metrics. Loopback only;
bounded by the request count.

  python3 bench/serve-load.py --bin build/src/cli/edgelm            # Markdown table
  python3 bench/serve-load.py --slots 1 2 4 8 --max-tokens 128 --repeat 3 --json
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

from server_process import start_server

TIMEOUT = 300  # per HTTP exchange: hang protection


def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
        return json.loads(data)
    finally:
        c.close()


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        c.request("GET", "/metrics")
        out = {}
        for line in c.getresponse().read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out
    finally:
        c.close()


def measure(binary, slots, requests, max_tokens, ctx, threads):
    args = ["-P", str(slots), "-c", str(ctx), "--queue", str(4 * slots)]
    if threads:
        args += ["-t", str(threads)]
    proc, port, log = start_server(binary, args)
    try:
        post(port, "/v1/completions", {"prompt": "Warm up:", "max_tokens": 4})
        m0 = metrics(port)
        tokens, errors = [], []

        def client(c):
            for i in range(requests):
                # Counting prompts: greedy decoding keeps counting, so every reply is max_tokens long.
                start_at = 1 + 7 * c + 3 * i
                prompt = ", ".join(str(k) for k in range(start_at, start_at + 6)) + ","
                try:
                    r = post(port, "/v1/completions", {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0})
                    tokens.append(r["usage"]["completion_tokens"])
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))

        t0 = time.monotonic()
        ts = [threading.Thread(target=client, args=(c,)) for c in range(slots)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.monotonic() - t0
        m1 = metrics(port)
        if errors:
            sys.exit("error: " + "; ".join(errors))
        steps = m1["edgelm_decode_steps_total"] - m0["edgelm_decode_steps_total"]
        rows = m1["edgelm_decode_rows_total"] - m0["edgelm_decode_rows_total"]
        dsec = m1["edgelm_decode_seconds_total"] - m0["edgelm_decode_seconds_total"]
        return {"slots": slots, "clients": slots, "requests": len(tokens), "tokens": sum(tokens),
                "wall_s": round(wall, 2), "tokens_per_s": round(sum(tokens) / wall, 2),
                "mean_batch": round(rows / steps, 2) if steps else 0,
                "decode_tokens_per_s": round(rows / dsec, 2) if dsec else 0,
                "per_request_tokens_per_s": round(sum(tokens) / wall / slots, 2)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.unlink(log)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.environ.get("EDGELM_BIN", "build/src/cli/edgelm"))
    ap.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--requests", type=int, default=3, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("-c", "--ctx", type=int, default=512, help="context per slot")
    ap.add_argument("-t", "--threads", type=int, default=0, help="server threads (0: all cores)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per slot count; the fastest is reported (other jobs on the machine only slow a run down)")
    ap.add_argument("--json", action="store_true", help="one JSON object per slot count")
    a = ap.parse_args()
    rows = []
    for n in a.slots:
        runs = [measure(a.bin, n, a.requests, a.max_tokens, a.ctx, a.threads) for _ in range(max(1, a.repeat))]
        r = max(runs, key=lambda x: x["tokens_per_s"])
        r["runs_tokens_per_s"] = [x["tokens_per_s"] for x in runs]
        rows.append(r)
        if a.json:
            print(json.dumps(r), flush=True)
        elif sys.stderr.isatty():
            print(f"  {n} slot(s): {r['tokens_per_s']} tok/s", file=sys.stderr)
    if not a.json:
        base = rows[0]["tokens_per_s"] or 1
        print("| slots | concurrent clients | requests | tokens | wall (s) | aggregate tok/s | vs first | mean decode batch | decode-step tok/s |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['slots']} | {r['clients']} | {r['requests']} | {r['tokens']} | {r['wall_s']} | "
                  f"{r['tokens_per_s']} | {r['tokens_per_s'] / base:.2f}x | {r['mean_batch']} | {r['decode_tokens_per_s']} |")


if __name__ == "__main__":
    main()
