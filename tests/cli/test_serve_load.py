"""A bounded load test of `edgelm serve`, loopback only: 4 x --parallel concurrent clients send a
fixed number of mixed requests (chat, streamed completions, clients that hang up mid-stream).
Every request must complete or get a clean 503 with Retry-After; the server must not crash, must
end with every slot free, and its RSS must stay flat from one round to the next.
About 60-90 s on a loaded 2-core machine."""
import json
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
from serve_harness import SOCKET_TIMEOUT, Server, check, read_head, run_all, sse_events  # noqa: E402

PARALLEL = 2
CLIENTS = 4 * PARALLEL
ROUNDS = 3
REQUESTS_PER_CLIENT = 3  # per round
RSS_GROWTH_LIMIT_KIB = 8 * 1024  # between the first and the last round


def one_request(s, client, i, outcome):
    kind = (client + i) % 3
    if kind == 0:
        status, h, data = s.request("POST", "/v1/chat/completions", {
            "messages": [{"role": "user", "content": f"Say something about the number {client * 10 + i}."}],
            "max_tokens": 6})
    elif kind == 1:
        status, h, data = s.request("POST", "/v1/completions", {
            "prompt": f"Item {client}-{i}:", "max_tokens": 6, "stream": True})
    else:
        # A client that leaves after the headers: its slot must come back.
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=SOCKET_TIMEOUT)
        body = json.dumps({"prompt": "1, 2, 3, 4,", "max_tokens": 64, "stream": True}).encode()
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = read_head(sock)
        sock.close()
        if head.startswith(b"HTTP/1.1 503"):
            outcome["503"] += 1
        else:
            check(head.startswith(b"HTTP/1.1 200"), f"hang-up client got {head!r}")
            outcome["left"] += 1
        return
    if status == 503:
        check(h.get("retry-after", "").isdigit(), f"503 without Retry-After: {h}")
        err = json.loads(data)["error"]
        check(err["code"] == "server_overloaded" and err["message"], f"503 body {err}")
        outcome["503"] += 1
        return
    check(status == 200, f"status {status}: {data[:200]!r}")
    if kind == 0:
        r = json.loads(data)
        check(isinstance(r["choices"][0]["message"]["content"], str) and r["usage"]["completion_tokens"] <= 6, f"{r}")
    else:
        events = sse_events(data)
        check(events[-1] == "[DONE]", "stream not finished")
        check(json.loads(events[-2])["choices"][0]["finish_reason"] in ("stop", "length"), "no finish reason")
    outcome["200"] += 1


def idle(s):
    # Hang-up clients' jobs are cancelled a poll interval after they leave: wait for that too.
    _, _, h = s.json("GET", "/health")
    return h["slots_busy"] == 0 and h["queue_depth"] == 0


def load_round(s):
    outcomes, errors = [], []

    def client(c):
        outcome = {"200": 0, "503": 0, "left": 0}
        outcomes.append(outcome)
        try:
            for i in range(REQUESTS_PER_CLIENT):
                one_request(s, c, i, outcome)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"client {c}: {e!r}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SOCKET_TIMEOUT * REQUESTS_PER_CLIENT)
        check(not t.is_alive(), "a client thread is stuck")
    check(not errors, "; ".join(errors))
    total = {k: sum(o[k] for o in outcomes) for k in ("200", "503", "left")}
    check(sum(total.values()) == CLIENTS * REQUESTS_PER_CLIENT, f"requests lost: {total}")
    return total


def test_load_every_request_completes_or_gets_503_and_rss_stays_flat():
    with Server("-P", str(PARALLEL), "--queue", str(PARALLEL), "-c", "256") as s:
        load_round(s)  # warm-up: threads, arenas, KV pages
        s.wait_for("idle slots", lambda: idle(s))
        rss = [s.rss_kib()]
        totals = []
        for _ in range(ROUNDS):
            totals.append(load_round(s))
            s.wait_for("idle slots", lambda: idle(s))
            rss.append(s.rss_kib())
        print(f"rounds: {totals}; RSS KiB after warm-up and each round: {rss}")
        check(s.proc.poll() is None, "the server died")
        check(sum(t["200"] for t in totals) >= CLIENTS, f"too few requests completed: {totals}")
        check(max(rss) - rss[0] <= RSS_GROWTH_LIMIT_KIB, f"RSS grew from {rss[0]} to {max(rss)} KiB")
        _, _, health = s.json("GET", "/health")
        check(health["slots_busy"] == 0 and health["queue_depth"] == 0, f"health {health}")
        m = s.metrics()
        check(m['edgelm_requests_total{outcome="failed"}'] == 0, "requests failed inside the engine")


if __name__ == "__main__":
    run_all(globals())
