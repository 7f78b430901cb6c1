"""`edgelm serve` under slow clients: 40 connections that send their request head a byte every
2 s and 60 half-sent requests (half a head, a head and half its body, half a chunked body) stay open while
/health and /metrics keep answering; the header and body deadlines answer 408 and close; one
address over --max-client-conns loses its oldest unfinished connection (429), not new ones.
Prints the /health latency distribution seen while the slow clients hang."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
from serve_harness import SOCKET_TIMEOUT, Server, check, read_head, run_all  # noqa: E402

BODY = b'{"prompt": "Hi", "max_tokens": 1}'
HEAD = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(BODY)}\r\n\r\n".encode())
CHUNKED_HEAD = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)


def still_open(sock):
    """True while the server has neither answered nor closed the connection."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # an answer or the end of the stream
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def get(port, path):
    """(status line bytes, seconds) of one GET on a fresh connection."""
    t0 = time.perf_counter()
    c = connect(port)
    try:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = read_head(c)
    finally:
        c.close()
    return head, time.perf_counter() - t0


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def test_health_answers_while_slow_clients_hang():
    # Deadlines far beyond the test's length: every slow client is still connected at the end.
    with Server("-P", "2", "-c", "128", "--header-timeout", "600", "--body-timeout", "600",
                "--idle-timeout", "600") as s:
        stop = threading.Event()
        dribblers = [connect(s.port) for _ in range(40)]

        def dribble():  # one byte of the head per connection every 2 s
            i = 0
            while not stop.is_set() and i < len(HEAD) - 1:
                for c in dribblers:
                    c.sendall(HEAD[i:i + 1])
                i += 1
                stop.wait(2)

        half = []
        for k in range(60):  # half a head, a head and half its body, half a chunked body
            c = connect(s.port)
            c.sendall([HEAD[:len(HEAD) // 2], HEAD + BODY[:len(BODY) // 2], CHUNKED_HEAD + b"5\r\nab"][k % 3])
            half.append(c)
        t = threading.Thread(target=dribble)
        t.start()
        try:
            lat = []
            for i in range(60):
                head, dt = get(s.port, "/health" if i % 2 == 0 else "/metrics")
                check(head == b"HTTP/1.1 200", f"probe {i}: {head!r}")
                lat.append(dt)
                time.sleep(0.1)
            hung = [still_open(c) for c in dribblers + half]
            check(all(hung), f"{hung.count(False)} of the slow clients were closed")
        finally:
            stop.set()
            t.join()
        ms = [x * 1000 for x in lat]
        print(f"/health and /metrics with 100 slow clients open: {len(ms)} probes, p50 {percentile(ms, 50):.1f} ms, "
              f"p90 {percentile(ms, 90):.1f} ms, max {max(ms):.1f} ms")
        # The half-sent requests are still served once the rest arrives.
        half[1].sendall(BODY[len(BODY) // 2:])
        check(read_head(half[1]) == b"HTTP/1.1 200", "a completed half-sent request is served")
        for c in dribblers + half:
            c.close()


def test_deadlines_answer_408():
    with Server("-c", "128", "--header-timeout", "1", "--body-timeout", "1", "--idle-timeout", "1") as s:
        slow_head = connect(s.port)
        slow_head.sendall(HEAD[:10])
        slow_body = connect(s.port)
        slow_body.sendall(HEAD + BODY[:5])
        silent = connect(s.port)
        for c, what, flag in ((slow_head, "head", b"--header-timeout"), (slow_body, "body", b"--body-timeout")):
            data = b""
            while True:  # until the server closes (the socket timeout guards a hang)
                more = c.recv(4096)
                if not more:
                    break
                data += more
            check(data.startswith(b"HTTP/1.1 408 "), f"slow {what}: {data[:200]!r}")
            check(flag in data, f"the 408 names the flag: {data!r}")
            c.close()
        check(silent.recv(16) == b"", "an idle connection is closed without an answer")
        silent.close()
        head, _ = get(s.port, "/health")
        check(head == b"HTTP/1.1 200", f"/health after the deadlines: {head!r}")


def test_one_address_over_its_bound_loses_its_oldest():
    with Server("-c", "128", "--max-client-conns", "8", "--header-timeout", "600") as s:
        conns = []
        for _ in range(20):
            c = connect(s.port)
            c.sendall(HEAD[:20])
            conns.append(c)
        # The 12 oldest were closed with a 429, the 8 newest still wait.
        for i, c in enumerate(conns[:12]):
            data = c.recv(4096)
            check(data.startswith(b"HTTP/1.1 429 ") and b"too_many_connections" in data, f"connection {i}: {data[:200]!r}")
        check(all(still_open(c) for c in conns[12:]), "the newest connections are kept")
        # A request sent whole still gets through (it closes the oldest waiting one).
        head, _ = get(s.port, "/health")
        check(head == b"HTTP/1.1 200", f"/health over the bound: {head!r}")
        for c in conns:
            c.close()


def test_pipelined_and_half_closed_requests_are_served():
    with Server("-c", "128") as s:
        # Two requests in one packet on a kept-alive connection: two answers, in order.
        c = connect(s.port)
        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            more = c.recv(65536)
            if not more:
                break
            data += more
        c.close()
        check(data.count(b"HTTP/1.1 200 ") == 2 and b'"object":"list"' in data, f"pipelined: {data[:400]!r}")
        # A chunked body, sent in two pieces.
        c = connect(s.port)
        c.sendall(CHUNKED_HEAD + b"5\r\n" + BODY[:5] + b"\r\n")
        time.sleep(0.2)
        rest = BODY[5:]
        c.sendall(f"{len(rest):x}\r\n".encode() + rest + b"\r\n0\r\n\r\n")
        check(read_head(c) == b"HTTP/1.1 200", "chunked request")
        c.close()
        # A client that closes its sending side after the request still gets the answer. (Not
        # for generation: there the end of the client's stream means it left, and cancels.)
        c = connect(s.port)
        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        c.shutdown(socket.SHUT_WR)
        check(read_head(c) == b"HTTP/1.1 200", "half-closed request")
        c.close()


if __name__ == "__main__":
    run_all(globals())
