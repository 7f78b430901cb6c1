"""End-to-end tests of `edgelm serve`: the official `openai` client for chat and completions
(streaming and not), raw HTTP for the error cases and the exact SSE framing, greedy output
equal to `edgelm run`, stop strings, prompt cache, cancellation, 503 on a full queue, API key,
/health and /metrics. About a minute on a loaded 2-core machine (max_tokens kept small)."""
import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
from serve_harness import (SOCKET_TIMEOUT, Server, check, check_error_body, edgelm,  # noqa: E402
                           read_head, run_all, sse_events)

import openai  # noqa: E402

PROMPT = "The three primary colors are"
N_GREEDY = 12

# One server (2 slots, small context) serves most tests; a few start their own.
S = Server("-P", "2", "-c", "512")


def client(server=None, key="none"):
    return openai.OpenAI(base_url=(server or S).base + "/v1", api_key=key, timeout=SOCKET_TIMEOUT, max_retries=0)


def run_greedy(prompt, n):
    r = edgelm("run", "-p", prompt, "-n", str(n), "--temp", "0", "-c", "512", "--timings")
    check(r.returncode == 0, f"edgelm run failed: {r.stderr}")
    check(r.stdout.startswith(prompt) and r.stdout.endswith("\n"), f"unexpected run output {r.stdout!r}")
    m = re.search(r"generated (\d+) tokens", r.stderr)
    check(m, f"no token count in {r.stderr!r}")
    return r.stdout[len(prompt):-1], int(m.group(1))


# ---- greedy equality first, while the slots' caches are empty -----------------------------------

def test_greedy_completion_equals_edgelm_run():
    want_text, want_n = run_greedy(PROMPT, N_GREEDY)
    r = client().completions.create(model="smollm2", prompt=PROMPT, max_tokens=N_GREEDY, temperature=0)
    got = r.choices[0].text
    check(got == want_text, f"server {got!r} != edgelm run {want_text!r}")
    check(r.usage.completion_tokens == want_n, f"{r.usage.completion_tokens} tokens != run's {want_n}")
    check(r.choices[0].finish_reason == ("length" if want_n == N_GREEDY else "stop"), f"finish {r.choices[0].finish_reason}")


def test_greedy_equal_while_batched_with_another_request():
    # Two requests decode in the same forward passes; each must still match its own greedy run.
    want_a, _ = run_greedy("My favourite fruit is", N_GREEDY)
    want_b, _ = run_greedy("Once upon a time, in a small village,", N_GREEDY)
    got = {}

    def go(key, prompt):
        r = client().completions.create(model="smollm2", prompt=prompt, max_tokens=N_GREEDY, temperature=0)
        got[key] = r.choices[0].text

    ts = [threading.Thread(target=go, args=("a", "My favourite fruit is")),
          threading.Thread(target=go, args=("b", "Once upon a time, in a small village,"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(SOCKET_TIMEOUT * 2)
    check(got.get("a") == want_a, f"batched a {got.get('a')!r} != {want_a!r}")
    check(got.get("b") == want_b, f"batched b {got.get('b')!r} != {want_b!r}")
    m = S.metrics()
    check(m["edgelm_decode_rows_total"] > m["edgelm_decode_steps_total"], f"no step decoded two rows: {m}")


# ---- the openai client ---------------------------------------------------------------------------

MESSAGES = [{"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Name a color."}]


def test_models_list():
    models = client().models.list()
    ids = [m.id for m in models.data]
    check(ids == ["SmolLM2-135M-Instruct.Q4_1"], f"models {ids}")
    m = client().models.retrieve(ids[0])
    check(m.id == ids[0], f"retrieve gave {m}")


def test_chat_non_streaming_and_streaming_agree():
    c = client()
    r = c.chat.completions.create(model="smollm2", messages=MESSAGES, max_tokens=10, temperature=0)
    check(r.object == "chat.completion" and r.id.startswith("chatcmpl-"), f"{r.object} {r.id}")
    msg = r.choices[0].message
    check(msg.role == "assistant" and isinstance(msg.content, str) and msg.content, f"message {msg}")
    check(r.choices[0].finish_reason in ("stop", "length"), f"finish {r.choices[0].finish_reason}")
    u = r.usage
    check(0 < u.completion_tokens <= 10 and u.prompt_tokens > 5 and u.total_tokens == u.prompt_tokens + u.completion_tokens,
          f"usage {u}")

    stream = c.chat.completions.create(model="smollm2", messages=MESSAGES, max_tokens=10, temperature=0,
                                       stream=True, stream_options={"include_usage": True})
    parts, finish, usage, n_chunks, roles = [], None, None, 0, []
    for chunk in stream:
        n_chunks += 1
        check(chunk.object == "chat.completion.chunk", f"chunk object {chunk.object}")
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.role:
                roles.append(ch.delta.role)
            if ch.delta.content:
                parts.append(ch.delta.content)
            if ch.finish_reason:
                finish = ch.finish_reason
    check(roles == ["assistant"], f"roles {roles}")
    check("".join(parts) == msg.content, f"stream {''.join(parts)!r} != non-stream {msg.content!r}")
    check(len(parts) >= 2, f"the reply came in {len(parts)} piece(s), not streamed")
    check(finish == r.choices[0].finish_reason, f"stream finish {finish}")
    check(usage and usage.completion_tokens == u.completion_tokens, f"stream usage {usage}")


def test_completion_streaming():
    parts, finish = [], None
    for chunk in client().completions.create(model="smollm2", prompt="Water boils at", max_tokens=8, stream=True,
                                             temperature=0.7, seed=7):
        check(chunk.object == "text_completion", f"chunk object {chunk.object}")
        for ch in chunk.choices:
            parts.append(ch.text)
            if ch.finish_reason:
                finish = ch.finish_reason
    check("".join(parts), "empty streamed completion")
    check(finish in ("stop", "length"), f"finish {finish}")
    # The same seed gives the same sample.
    again = client().completions.create(model="smollm2", prompt="Water boils at", max_tokens=8, temperature=0.7, seed=7)
    check(again.choices[0].text == "".join(parts), f"seeded {again.choices[0].text!r} != {''.join(parts)!r}")


def test_sampling_parameters_accepted():
    r = client().chat.completions.create(model="smollm2", messages=MESSAGES, max_tokens=6, temperature=0.9, top_p=0.8,
                                         presence_penalty=1.5, frequency_penalty=0.5, seed=3, stop=["\n\n"])
    check(r.choices[0].message.content is not None and r.usage.completion_tokens <= 6, f"{r}")


def test_stop_string_cuts_the_output():
    full = client().completions.create(model="smollm2", prompt=PROMPT, max_tokens=N_GREEDY, temperature=0).choices[0].text
    words = full.split()
    check(len(words) >= 3, f"too short to pick a stop string: {full!r}")
    stop = " " + words[2]
    r = client().completions.create(model="smollm2", prompt=PROMPT, max_tokens=N_GREEDY, temperature=0, stop=[stop, "zzzz"])
    check(r.choices[0].text == full[:full.index(stop)], f"{r.choices[0].text!r} vs {full!r} stop {stop!r}")
    check(r.choices[0].finish_reason == "stop", f"finish {r.choices[0].finish_reason}")


def test_prompt_cache_reuses_the_shared_prefix():
    before = S.metrics()["edgelm_prompt_tokens_cached_total"]
    msgs = [{"role": "system", "content": "You answer in one word. " * 8},
            {"role": "user", "content": "Sky color?"}]
    client().chat.completions.create(model="smollm2", messages=msgs, max_tokens=3, temperature=0)
    msgs2 = msgs[:1] + [{"role": "user", "content": "Grass color?"}]
    r = client().chat.completions.create(model="smollm2", messages=msgs2, max_tokens=3, temperature=0)
    cached = r.usage.prompt_tokens_details.cached_tokens
    check(cached >= 40, f"only {cached} of {r.usage.prompt_tokens} prompt tokens came from the cache")
    check(S.metrics()["edgelm_prompt_tokens_cached_total"] - before >= cached, "metrics do not count cached tokens")


# ---- raw HTTP: framing and errors ----------------------------------------------------------------

def test_sse_framing_is_exact():
    status, h, raw = S.request("POST", "/v1/chat/completions",
                               {"messages": MESSAGES, "max_tokens": 5, "stream": True, "temperature": 0})
    check(status == 200, f"status {status}")
    check(h.get("content-type", "").startswith("text/event-stream"), f"content-type {h.get('content-type')}")
    events = sse_events(raw)
    check(events[-1] == "[DONE]", f"last event {events[-1]!r}")
    chunks = [json.loads(e) for e in events[:-1]]
    check(len({c["id"] for c in chunks}) == 1, "chunk ids differ")
    check(chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}, f"first {chunks[0]}")
    for c in chunks[1:-1]:
        ch = c["choices"][0]
        check(ch["finish_reason"] is None and isinstance(ch["delta"]["content"], str), f"middle chunk {c}")
    last = chunks[-1]["choices"][0]
    check(last["delta"] == {} and last["finish_reason"] in ("stop", "length"), f"last chunk {chunks[-1]}")
    check(all("usage" not in c for c in chunks), "usage sent without stream_options.include_usage")

    status, h, raw = S.request("POST", "/v1/completions",
                               {"prompt": "Hello", "max_tokens": 4, "stream": True,
                                "stream_options": {"include_usage": True}})
    events = sse_events(raw)
    check(events[-1] == "[DONE]", "completion stream lacks [DONE]")
    chunks = [json.loads(e) for e in events[:-1]]
    check(chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1, f"usage chunk {chunks[-1]}")
    check(all(c["usage"] is None for c in chunks[:-1]), "usage must be null before the last chunk")


def test_bad_requests_get_openai_errors():
    cases = [
        ("/v1/chat/completions", b"{not json", None, "invalid_json"),
        ("/v1/chat/completions", b"[1, 2]", None, "invalid_type"),
        ("/v1/chat/completions", {"messages": "hi"}, "messages", "invalid_type"),
        ("/v1/chat/completions", {"messages": []}, "messages", None),
        ("/v1/chat/completions", {}, "messages", "missing_required_parameter"),
        ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", None),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
         "messages[0].content", "unsupported_content"),
        ("/v1/chat/completions", {"messages": MESSAGES, "temperature": "hot"}, "temperature", "invalid_type"),
        ("/v1/chat/completions", {"messages": MESSAGES, "temperature": 3}, "temperature", None),
        ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 0}, "max_tokens", None),
        ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 2.5}, "max_tokens", "invalid_type"),
        ("/v1/chat/completions", {"messages": MESSAGES, "n": 2}, "n", "unsupported_parameter"),
        ("/v1/chat/completions", {"messages": MESSAGES, "stop": ["a", "b", "c", "d", "e"]}, "stop", None),
        ("/v1/chat/completions", {"messages": MESSAGES, "stop": 7}, "stop", "invalid_type"),
        ("/v1/chat/completions", {"messages": MESSAGES, "stream": "yes"}, "stream", "invalid_type"),
        ("/v1/chat/completions", {"messages": MESSAGES, "stream_options": {"include_usage": True}}, "stream_options", None),
        ("/v1/chat/completions", {"messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "f"}}],
                                  "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice", None),
        ("/v1/completions", {"prompt": "x", "tools": [{"type": "function", "function": {"name": "f"}}]},
         "tools", "unsupported_parameter"),
        ("/v1/chat/completions", {"messages": MESSAGES, "logprobs": True}, "logprobs", "unsupported_parameter"),
        ("/v1/completions", {"prompt": ""}, "prompt", None),
        ("/v1/completions", {"prompt": ["a", "b"]}, "prompt", "unsupported_parameter"),
        ("/v1/completions", {"prompt": [1, 99999999]}, "prompt", None),
        ("/v1/completions", {"prompt": "x", "echo": True}, "echo", "unsupported_parameter"),
        ("/v1/completions", {"prompt": "x", "seed": "s"}, "seed", "invalid_type"),
        ("/v1/completions", {"prompt": "x", "model": 3}, "model", "invalid_type"),
        ("/v1/completions", {"prompt": "x", "presence_penalty": -3}, "presence_penalty", None),
    ]
    for path, body, param, code in cases:
        status, _, data = S.request("POST", path, body if not isinstance(body, bytes) else body)
        check_error_body(status, data, 400, param, code)

    # Nesting too deep to be a request.
    status, _, data = S.request("POST", "/v1/completions", b'{"prompt": "x", "a": ' + b"[" * 200 + b"]" * 200 + b"}")
    check_error_body(status, data, 400)
    # A prompt longer than a slot's context.
    status, _, data = S.request("POST", "/v1/completions", {"prompt": "word " * 2000, "max_tokens": 4})
    check_error_body(status, data, 400, "prompt", "context_length_exceeded")
    status, _, data = S.request("POST", "/v1/chat/completions",
                                {"messages": [{"role": "user", "content": "word " * 2000}]})
    check_error_body(status, data, 400, "messages", "context_length_exceeded")
    # Unknown route, wrong method, unknown model id.
    status, _, data = S.request("GET", "/v2/everything")
    check_error_body(status, data, 404)
    status, h, data = S.request("GET", "/v1/chat/completions")
    check_error_body(status, data, 405)
    check(h.get("allow") == "POST", f"Allow header {h.get('allow')}")
    status, _, data = S.request("GET", "/v1/models/gpt-9")
    check_error_body(status, data, 404, "model", "model_not_found")
    # Nothing leaked: no slot is busy and the server still answers.
    status, _, health = S.json("GET", "/health")
    check(status == 200 and health["slots_busy"] == 0 and health["queue_depth"] == 0, f"health {health}")


def test_only_json_bodies_start_generation():
    # A web page can send these without a CORS preflight: they must not reach the model.
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": ctype} if ctype else {}
        c = S.conn()
        try:
            c.request("POST", "/v1/completions", body=json.dumps({"prompt": "Hi", "max_tokens": 1}), headers=headers)
            r = c.getresponse()
            status, data = r.status, r.read()
        finally:
            c.close()
        check_error_body(status, data, 415, None, "unsupported_media_type")
    status, _, _ = S.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 1},
                             headers={"Content-Type": "Application/JSON; charset=utf-8"})
    check(status == 200, f"JSON with a charset parameter: {status}")


def test_model_field_names_the_loaded_model():
    for known in ("smollm2", "SmolLM2-135M-Instruct.Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf"):
        status, _, data = S.request("POST", "/v1/completions", {"model": known, "prompt": "Hi", "max_tokens": 1})
        check(status == 200, f"{known}: {status} {data[:200]!r}")
    status, _, data = S.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 1})
    check(status == 200, f"no model field: {status}")
    for path, body in (("/v1/completions", {"model": "gpt-4o", "prompt": "Hi", "max_tokens": 1}),
                       ("/v1/chat/completions", {"model": "llama-3", "messages": MESSAGES, "max_tokens": 1})):
        status, _, data = S.request("POST", path, body)
        check_error_body(status, data, 404, "model", "model_not_found")
        check(b"SmolLM2-135M-Instruct.Q4_1" in data, f"the 404 names the served model: {data!r}")


def test_cross_origin_pages_need_cors_origin():
    evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"}
    # Default: no origin may call; the preflight is refused and nothing grants access.
    status, h, data = S.request("OPTIONS", "/v1/chat/completions", headers=evil)
    check_error_body(status, data, 403, None, "cors_not_allowed")
    check("access-control-allow-origin" not in h, f"{h}")
    status, h, _ = S.request("GET", "/v1/models", headers={"Origin": "https://evil.example"})
    check(status == 200 and "access-control-allow-origin" not in h, f"{status} {h}")
    with Server("-c", "128", "--cors-origin", "https://app.example", "--cors-origin", "http://localhost:3000") as s:
        ok = dict(evil, Origin="https://app.example")
        status, h, _ = s.request("OPTIONS", "/v1/chat/completions", headers=ok)
        check(status == 204, f"preflight {status}")
        check(h.get("access-control-allow-origin") == "https://app.example", f"{h}")
        check("POST" in h.get("access-control-allow-methods", ""), f"{h}")
        check("content-type" in h.get("access-control-allow-headers", "").lower(), f"{h}")
        status, h, _ = s.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 1},
                                 headers={"Origin": "http://localhost:3000"})
        check(status == 200 and h.get("access-control-allow-origin") == "http://localhost:3000", f"{status} {h}")
        status, h, _ = s.request("OPTIONS", "/v1/completions", headers=evil)
        check(status == 403 and "access-control-allow-origin" not in h, f"{status} {h}")


def test_a_port_in_use_is_refused():
    r = edgelm("serve", "--port", str(S.port), "-c", "128", timeout=120)
    check(r.returncode != 0, f"a second server started on port {S.port}: {r.stderr}")
    check(f"cannot listen on 127.0.0.1:{S.port}" in r.stderr and "in use" in r.stderr, r.stderr)
    check(r.stderr.count("\n") <= 2, f"one error line: {r.stderr!r}")
    status, _, _ = S.request("GET", "/health")
    check(status == 200, "the first server still answers")


def test_a_burst_gets_answers_not_resets():
    # Far more clients at once than slots, queue and worker threads: each gets an HTTP answer
    # (200 or a 503), never a refused or reset connection. (The listen backlog behind this,
    # 512 by default, is checked by `ss -ltn` in docs/server.md; loopback here never overflowed
    # even cpp-httplib's old backlog of 5.)
    body = json.dumps({"prompt": "Hi", "max_tokens": 2}).encode()
    request = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    with Server("-P", "1", "--queue", "1", "-c", "128") as s:
        for rnd in range(8):
            heads, errors = [], []
            go = threading.Event()

            def one():
                try:
                    go.wait()
                    c = socket.create_connection(("127.0.0.1", s.port), timeout=SOCKET_TIMEOUT)
                    c.sendall(request)
                    heads.append(read_head(c))
                    c.close()
                except OSError as e:
                    errors.append(repr(e))

            threads = [threading.Thread(target=one) for _ in range(48)]
            for t in threads:
                t.start()
            go.set()
            for t in threads:
                t.join()
            check(not errors, f"round {rnd}: {len(errors)} connections failed: {errors[:3]}")
            check(all(h in (b"HTTP/1.1 200", b"HTTP/1.1 503") for h in heads), f"round {rnd}: {set(heads)}")
            s.wait_for("the slot to be free", lambda: s.json("GET", "/health")[2]["slots_busy"] == 0)


def test_too_large_body_is_413():
    with Server("--max-body", "4096", "-c", "128") as s:
        status, _, data = s.request("POST", "/v1/completions", {"prompt": "x" * 8000})
        check_error_body(status, data, 413)
        # A Content-Length that is not a byte count, or beyond --max-body, is answered from the
        # headers alone: the body is never sent here.
        for length, want in (("-5", 400), ("abc", 400), ("99999999999", 413), ("18446744073709551616", 413),
                             ("5000", 413)):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=SOCKET_TIMEOUT)
            c.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {length}\r\n\r\n".encode())
            head = c.recv(4096).decode(errors="replace")
            c.close()
            check(head.startswith(f"HTTP/1.1 {want} "), f"Content-Length {length}: {head[:200]!r}")
        status, _, _ = s.request("GET", "/health")
        check(status == 200, "server down after a large body")


def test_metrics_are_prometheus_text():
    status, h, data = S.request("GET", "/metrics")
    check(status == 200 and h["content-type"].startswith("text/plain"), f"{status} {h}")
    text = data.decode()
    for name in ("edgelm_requests_total", "edgelm_generated_tokens_total", "edgelm_prompt_tokens_total",
                 "edgelm_queue_depth", "edgelm_tokens_per_second", "edgelm_slots_busy", "edgelm_http_requests_total"):
        check(f"# TYPE {name} " in text, f"metric {name} missing")
    for line in text.splitlines():
        if not line.startswith("#"):
            check(re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+', line), f"bad line {line!r}")
    m = S.metrics()
    check(m["edgelm_generated_tokens_total"] > 0 and m['edgelm_requests_total{outcome="completed"}'] > 0, "counters stayed 0")
    check(m.get('edgelm_http_requests_total{method="POST",route="/v1/chat/completions",code="400"}', 0) > 0,
          "HTTP 400s not counted")


# ---- cancellation, queue, key --------------------------------------------------------------------

COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"  # greedy decoding keeps counting: a long reply
# A reply that cannot end while a test acts on it, however fast the host: thousands of tokens in
# a context that holds them (seconds of work on any CPU), where the test needs a few milliseconds.
LONG = {"prompt": COUNTING, "max_tokens": 4000, "temperature": 0}
LONG_CTX = "4096"


def raw_post(port, path, body):
    s = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
    data = json.dumps(body).encode()
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return s


def test_client_disconnect_cancels_generation():
    key = 'edgelm_requests_total{outcome="cancelled"}'
    with Server("-P", "1", "-c", LONG_CTX) as s:
        # Streaming: read the first bytes, then hang up.
        c = raw_post(s.port, "/v1/completions", {**LONG, "stream": True})
        check(c.recv(4096).startswith(b"HTTP/1.1 200"), "stream did not start")
        c.close()
        s.wait_for("the streaming request to be cancelled", lambda: s.metrics()[key] >= 1)
        # Not streaming: hang up while it is being generated.
        c = raw_post(s.port, "/v1/completions", LONG)
        s.wait_for("the request to take a slot", lambda: s.json("GET", "/health")[2]["slots_busy"] >= 1)
        c.close()
        s.wait_for("the request to be cancelled", lambda: s.metrics()[key] >= 2)
        s.wait_for("the slots to be free", lambda: s.json("GET", "/health")[2]["slots_busy"] == 0)
        check(s.metrics()['edgelm_requests_total{outcome="completed"}'] == 0, "a long request ended before its client left")
        gen = s.metrics()["edgelm_generated_tokens_total"]
        r = client(s).completions.create(model="smollm2", prompt="Hi", max_tokens=2)
        check(r.usage.completion_tokens >= 1, "server stuck after cancellations")
        check(s.metrics()["edgelm_generated_tokens_total"] - gen < 50, "cancelled requests kept generating")


def test_full_queue_gets_503_with_retry_after():
    with Server("-P", "1", "--queue", "0", "-c", LONG_CTX) as s:
        hold = raw_post(s.port, "/v1/completions", {**LONG, "stream": True})
        try:
            check(hold.recv(4096).startswith(b"HTTP/1.1 200"), "first request did not start")
            s.wait_for("the slot to be busy", lambda: s.json("GET", "/health")[2]["slots_busy"] == 1)
            status, h, data = s.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 2})
            check_error_body(status, data, 503, None, "server_overloaded")
            check(h.get("retry-after", "").isdigit() and int(h["retry-after"]) >= 1, f"Retry-After {h.get('retry-after')}")
            try:
                client(s).completions.create(model="smollm2", prompt="x", max_tokens=2)
                check(False, "the openai client did not see the 503")
            except openai.APIStatusError as e:
                check(e.status_code == 503, f"status {e.status_code}")
        finally:
            hold.close()
        s.wait_for("the slot to be freed", lambda: s.json("GET", "/health")[2]["slots_busy"] == 0)
        status, _, _ = s.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 2})
        check(status == 200, f"after the queue drained: {status}")


def test_api_key_is_required():
    with Server("--api-key", "s3cret", "-c", "128") as s:
        for path in ("/v1/models", "/metrics"):
            status, h, data = s.request("GET", path)
            check_error_body(status, data, 401, None, "invalid_api_key")
        status, _, data = s.request("POST", "/v1/completions", {"prompt": "x"}, {"Authorization": "Bearer wrong"})
        check_error_body(status, data, 401)
        status, _, _ = s.request("GET", "/health")
        check(status == 200, "health should not need the key")
        status, _, page = s.request("GET", "/")
        check(status == 200 and b"<html" in page, "the page should load without the key")
        try:
            client(s, key="wrong").models.list()
            check(False, "wrong key accepted")
        except openai.AuthenticationError:
            pass
        r = client(s, key="s3cret").completions.create(model="smollm2", prompt="Hi", max_tokens=2)
        check(r.usage.completion_tokens >= 1, f"{r}")


def test_chat_page_is_self_contained():
    status, h, data = S.request("GET", "/")
    check(status == 200 and h["content-type"].startswith("text/html"), f"{status} {h}")
    page = data.decode()
    check("<script" in page and "/v1/chat/completions" in page, "page lacks its script")
    check(not re.search(r'(src|href)="(https?:)?//', page), "page references an external asset")


def main():
    with S:
        run_all({k: v for k, v in globals().items() if k.startswith("test_")})


if __name__ == "__main__":
    main()
