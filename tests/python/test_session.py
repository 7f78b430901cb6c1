"""edgelm's own level: Model / Session / Sampler with numpy views, embed, the GIL, Ctrl-C,
perplexity, quantize, convert and the anomaly Detector."""
import copy
import gc
import json
import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest

import edgelm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_logits_are_read_only_views_that_keep_the_session_alive(model):
    s = edgelm.Session(model, n_ctx=128, n_threads=2)
    ids = model.tokenize(b"The capital of France is", True, False)
    logits = s.eval(ids)
    assert logits.shape == (model.n_vocab,) and logits.dtype == np.float32
    assert not logits.flags.writeable and not logits.flags.owndata
    with pytest.raises(ValueError):
        logits[0] = 1.0
    kept = logits.copy()
    del s
    gc.collect()
    assert np.array_equal(logits, kept)  # the view holds the session
    paris = model.tokenize(b" Paris", False, False)[0]
    assert int(np.argmax(kept)) == paris


def test_eval_all_rows_and_hidden_states(model):
    ids = model.tokenize(b"One two three four", True, False)
    s = edgelm.Session(model, n_ctx=128, n_threads=2)
    rows = s.eval_all(ids)
    assert rows.shape == (len(ids), model.n_vocab) and not rows.flags.writeable
    last = rows[-1].copy()
    one = edgelm.Session(model, n_ctx=128, n_threads=2)
    assert np.abs(one.eval(ids) - last).max() < 1e-3
    h = edgelm.Session(model, n_ctx=128, n_threads=2).hidden(ids)
    assert h.shape == (len(ids), model.n_embd) and not h.flags.writeable and np.isfinite(h).all()
    assert s.n_past() == len(ids) and s.tokens() == ids
    s.truncate(2)
    assert s.tokens() == ids[:2]


def test_sampler_over_numpy_logits(model):
    logits = np.full(model.n_vocab, -10.0, dtype=np.float32)
    logits[42] = 5.0
    assert edgelm.Sampler(temperature=0).sample(logits) == 42
    g = edgelm.Sampler(temperature=0, grammar='root ::= "yes" | "no"', model=model)
    assert g.grammar_complete is False
    with pytest.raises(ValueError, match="top_p"):
        edgelm.Sampler(top_p=1.5)
    with pytest.raises(ValueError):
        edgelm.Sampler(grammar="root ::= (", model=model)


def test_embed_texts(model):
    v = edgelm.embed(model, ["The cat sat on the mat.", "A cat was sitting on a mat.", "Stock markets fell today."])
    assert v.shape == (3, model.n_embd) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]
    one = edgelm.embed(model, "The cat sat on the mat.")
    assert one.shape == (model.n_embd,) and np.abs(one - v[0]).max() < 1e-3


def test_generation_callback_stops_and_raises(model):
    s = edgelm.Session(model, n_ctx=256, n_threads=2)
    ids = model.tokenize(b"Once upon a time", True, False)
    seen = []
    n = s.generate(ids, 50, edgelm.Sampler(temperature=0), lambda t: seen.append(t) or len(seen) < 5)
    assert n == 5 and len(seen) == 5

    def boom(t):
        raise ZeroDivisionError("from the callback")
    with pytest.raises(ZeroDivisionError, match="from the callback"):
        s.generate([ids[-1]], 10, edgelm.Sampler(temperature=0), boom)


class Ticker:
    """A thread that wakes every millisecond and counts: it advances only while nobody holds the GIL."""

    def __init__(self):
        self.ticks, self.done = 0, False
        self.t = threading.Thread(target=self.run)
        self.t.start()

    def run(self):
        while not self.done:
            self.ticks += 1
            time.sleep(0.001)

    def stop(self):
        self.done = True
        self.t.join()


def test_gil_released_during_prompt_and_generation(model):
    text = open(os.path.join(ROOT, "tests", "fixtures", "text", "essays.txt"), encoding="utf-8").read()[:2500]
    ids = model.tokenize(text.encode(), True, False)[:400]
    s = edgelm.Session(model, n_ctx=1024, n_threads=2)
    ticker = Ticker()
    try:
        time.sleep(0.01)
        before = ticker.ticks
        s.eval(ids)  # one call into C++: the ticker moves only if it runs without the GIL
        during_eval = ticker.ticks - before
        before = ticker.ticks
        s.generate([ids[-1]], 48, edgelm.Sampler(temperature=0), lambda t: True)
        during_gen = ticker.ticks - before
    finally:
        ticker.stop()
    assert during_eval >= 10, during_eval
    assert during_gen >= 10, during_gen


def test_ctrl_c_interrupts_a_generation(model):
    s = edgelm.Session(model, n_ctx=1024, n_threads=2)
    ids = model.tokenize(b"Once upon a time, in a land far away,", True, False)
    first = threading.Event()
    seen = []

    def on_token(t):
        seen.append(t)
        first.set()
        return True
    # SIGINT arrives from another thread while the main thread is in C++ (as Ctrl-C does).
    killer = threading.Thread(target=lambda: first.wait() and os.kill(os.getpid(), signal.SIGINT), daemon=True)
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            s.generate(ids, 900, edgelm.Sampler(temperature=0), on_token)
    finally:
        first.set()
        killer.join()
    assert 1 <= len(seen) < 900
    # The session is usable afterwards.
    assert s.generate([ids[-1]], 3, edgelm.Sampler(temperature=0), lambda t: True) == 3


def test_perplexity_and_quantize(model, smollm2, tmp_path):
    text = open(os.path.join(ROOT, "tests", "fixtures", "text", "essays.txt"), encoding="utf-8").read()[:6000]
    r = edgelm.perplexity(model, text, n_ctx=256, n_chunks=2, n_threads=2)
    assert r["n_chunks"] == 2 and 1 < r["ppl"] < 200
    out = tmp_path / "smollm2-q8_0.gguf"
    q = edgelm.quantize(smollm2, str(out), "q8_0", n_threads=2)
    assert out.exists() and q["bytes_out"] == out.stat().st_size
    m8 = edgelm.Model.load(str(out))
    ids = model.tokenize(b"The capital of France is", True, False)
    a = edgelm.Session(model, n_ctx=64, n_threads=2).eval(ids)
    b = edgelm.Session(m8, n_ctx=64, n_threads=2).eval(ids)
    assert int(np.argmax(a)) == int(np.argmax(b))
    with pytest.raises(ValueError, match="unknown type"):
        edgelm.quantize(smollm2, str(out), "q3_zz")


def test_bench(model):
    r = edgelm.bench(model, n_prompt=[16], n_gen=[4], threads=[1], reps=2)
    assert [(t["test"], t["threads"]) for t in r] == [("pp16", 1), ("tg4", 1)]
    for t in r:
        assert len(t["samples_ts"]) == 2 and t["min_ts"] <= t["median_ts"] <= t["max_ts"] and t["min_ts"] > 0
        n = t["n_prompt"] or t["n_gen"]
        assert abs(t["samples_ts"][0] * t["samples_ms"][0] / 1e3 - n) < 1e-6 * n
    with pytest.raises(ValueError, match="thread"):
        edgelm.bench(model, threads=[0])
    with pytest.raises(ValueError, match="KV cache type 'f8'"):
        edgelm.bench(model, kv_type="f8")


def test_detector_scores_and_snapshot():
    rng = np.random.default_rng(0)
    t = np.arange(3000, dtype=np.int64) * 1000
    v = (np.sin(np.arange(3000) / 50) + 0.05 * rng.standard_normal(3000)).astype(np.float32)
    v[2500] += 8.0
    d = edgelm.Detector()
    s1 = d.push(t[:2000], v[:2000])
    snap = d.copy()
    s2 = d.push(t[2000:], v[2000:])
    assert s1.shape == (2000,) and ((0 <= s2) & (s2 <= 1)).all()
    assert s2[500] >= d.alarm_threshold and np.median(s2) < 0.1
    assert np.array_equal(copy.deepcopy(snap).push(t[2000:], v[2000:]), s2)
    assert d.samples_seen == 3000
    with pytest.raises(ValueError):
        edgelm.Detector('{"no_such_field": 1}')
    with pytest.raises(ValueError, match="length"):
        d.push(t[:3], v[:2])


def test_detector_state_bytes_pickle_and_channels():
    rng = np.random.default_rng(1)
    t = np.arange(3000, dtype=np.int64) * 1000
    v = (np.sin(np.arange(3000) / 40)[:, None] + 0.05 * rng.standard_normal((3000, 3))).astype(np.float32)
    v[2600, 1] += 6.0
    whole = edgelm.Detector('{"channels": 3}').push(t, v)
    d = edgelm.Detector('{"channels": 3}')
    assert d.channels == 3
    first = d.push(t[:1700], v[:1700])
    state = d.state()
    assert isinstance(state, bytes) and len(state) > 1000
    rest = edgelm.Detector.from_state(state).push(t[1700:], v[1700:])
    assert np.array_equal(np.concatenate([first, rest]), whole) and rest.max() > 0
    again = pickle.loads(pickle.dumps(d))
    assert again.samples_seen == 1700 and np.array_equal(again.push(t[1700:], v[1700:]), rest)
    damaged = bytearray(state)
    damaged[len(state) // 2] ^= 0x40
    with pytest.raises(ValueError, match="checksum"):
        edgelm.Detector.from_state(bytes(damaged))
    with pytest.raises(ValueError):
        edgelm.Detector.from_state(state[:100])
    with pytest.raises(ValueError, match="columns"):
        d.push(t[:3], v[:3, :2])


def test_convert_a_hugging_face_checkpoint(tmp_path):
    fixtures = os.path.join(ROOT, "tests", "fixtures", "convert")
    expected = json.load(open(os.path.join(fixtures, "expected.json")))
    fam = expected["families"]["qwen2"]
    out = tmp_path / "qwen2.gguf"
    r = edgelm.convert(os.path.join(fixtures, "qwen2"), str(out), "f32", n_threads=1)
    assert r["arch"] == "qwen2" and r["bytes_out"] == out.stat().st_size
    m = edgelm.Model.load(str(out))
    toks = fam["sequences"][0]
    logits = edgelm.Session(m, n_ctx=32, n_threads=1).eval(toks)
    want = np.array(fam["llama_cpp"][0][-1])  # the last position, every id_stride-th word
    got = np.asarray(logits)[:: expected["id_stride"]][: len(want)]
    assert np.max(np.abs(got - want)) <= 1e-3 * np.max(np.abs(want))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        edgelm.convert(str(tmp_path / "nowhere"), str(tmp_path / "x.gguf"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        edgelm.convert(str(tmp_path / "bad"), str(tmp_path / "x.gguf"))
    assert not (tmp_path / "x.gguf").exists()
