#!/usr/bin/env python3
"""Grammar-constrained sampling, edgelm against llama.cpp, per generated token, on the same GGUF,
the same GBNF grammar and the same token sequence.

For each JSON Schema, edgelm turns it into GBNF (llama.cpp's syntax: both engines parse the same
text) and generates a greedy constrained answer to a chat prompt. That token sequence is then
replayed through both engines (teacher forcing): each evaluates the prompt and every token with
its own forward pass, and at every step only the grammar's work is timed:
  - edgelm: constrained sample + accept minus plain sample + accept on the same logits (the
    mask, from its per-state cache or computed);
  - llama.cpp, the way llama-cpp-python samples ("full"): llama_sampler_apply of the grammar
    sampler over all n_vocab candidates, plus its accept;
  - llama.cpp, the way llama-server's common sampler does ("check first"): the grammar checks
    only the plain sampler's choice, and runs over all candidates only when it rejects it.
Both sides are called from Python (edgelm's extension; llama-cpp-python's ctypes bindings of
the same llama.cpp source package bench/llamacpp.sh builds), so each timing carries about a
microsecond of call overhead. Needs the oracle environment (scripts/install-deps.sh --oracle).

  python3 bench/grammar/vs_llamacpp.py -m ~/.cache/edgelm/models/smollm2.gguf bench/grammar/*.json
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def edgelm_module():
    sys.path.insert(0, os.path.join(ROOT, "build", "python"))
    import edgelm
    return edgelm


def prompt_text(edgelm, model, schema_text, request):
    messages = [{"role": "system", "content": "Answer with JSON that follows this schema: " + schema_text},
                {"role": "user", "content": request}]
    return model.render_chat(json.dumps(messages), True)


def generate(edgelm, model, session, prompt, gbnf, n_gen):
    """edgelm's greedy constrained answer: the token sequence both engines replay."""
    sampler = edgelm.Sampler(temperature=0, grammar=gbnf, model=model)
    session.truncate(0)
    logits = session.eval(prompt)
    out = []
    for _ in range(n_gen):
        tok = sampler.sample(logits)
        if model.is_eog(tok):
            break
        sampler.accept(tok)
        out.append(tok)
        if sampler.grammar_complete:
            break
        logits = session.eval([tok])
    return out


def time_edgelm(edgelm, model, session, prompt, gbnf, tokens):
    constrained = edgelm.Sampler(temperature=0, grammar=gbnf, model=model)
    plain = edgelm.Sampler(temperature=0)
    session.truncate(0)
    logits = session.eval(prompt)
    extra = []
    for tok in tokens:
        t0 = time.perf_counter()
        constrained.sample(logits)
        constrained.accept(tok)
        t1 = time.perf_counter()
        plain.sample(logits)
        plain.accept(tok)
        t2 = time.perf_counter()
        extra.append((t1 - t0) - (t2 - t1))
        logits = session.eval([tok])
    return extra


class LlamaCpp:
    def __init__(self, path, n_threads, n_ctx=2048):
        import llama_cpp as L
        self.L = L
        from llama_cpp import _logger
        _logger.set_verbose(False)  # errors only
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            sys.exit(f"error: llama.cpp could not load {path}")
        cp = L.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_threads, cp.n_threads_batch = n_ctx, n_ctx, n_threads, n_threads
        self.ctx = L.llama_init_from_model(self.model, cp)
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        # llama_token_data {int32 id; float logit; float p} as a numpy record array
        self.dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        assert self.dtype.itemsize == ctypes.sizeof(L.llama_token_data)
        self.cand = np.zeros(self.n_vocab, dtype=self.dtype)
        self.one = np.zeros(1, dtype=self.dtype)

    def decode(self, tokens, first_pos):
        L = self.L
        batch = L.llama_batch_init(len(tokens), 0, 1)
        batch.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            batch.token[i] = t
            batch.pos[i] = first_pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(tokens) - 1
        if L.llama_decode(self.ctx, batch) != 0:
            sys.exit("error: llama_decode failed")
        L.llama_batch_free(batch)
        return np.ctypeslib.as_array(L.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))

    def array(self, rec):
        L = self.L
        return L.llama_token_data_array(data=rec.ctypes.data_as(ctypes.POINTER(L.llama_token_data)), size=len(rec),
                                        selected=-1, sorted=False)

    def grammar(self, gbnf):
        g = self.L.llama_sampler_init_grammar(self.vocab, gbnf.encode(), b"root")
        if not g:
            sys.exit("error: llama.cpp did not accept the grammar")
        return g

    def replay(self, prompt, gbnf, tokens):
        """Per token: (full apply + accept, check-first + accept, rejected by the check)."""
        L = self.L
        mem = L.llama_get_memory(self.ctx)
        L.llama_memory_clear(mem, True)
        full_g, check_g = self.grammar(gbnf), self.grammar(gbnf)
        logits = self.decode(prompt, 0)
        full, check, rejected = [], [], 0
        for i, tok in enumerate(tokens):
            self.cand["id"] = np.arange(self.n_vocab, dtype=np.int32)
            self.cand["logit"] = logits
            self.cand["p"] = 0
            arr = self.array(self.cand)
            t0 = time.perf_counter()
            L.llama_sampler_apply(full_g, ctypes.byref(arr))
            L.llama_sampler_accept(full_g, tok)
            full.append(time.perf_counter() - t0)
            # check first: the plain (greedy) choice alone, all candidates only when it is refused
            best = int(np.argmax(logits))
            self.one["id"], self.one["logit"], self.one["p"] = best, logits[best], 0
            one = self.array(self.one)
            self.cand["logit"] = logits  # a fresh candidate array for the fallback, as the server builds
            arr = self.array(self.cand)
            t0 = time.perf_counter()
            L.llama_sampler_apply(check_g, ctypes.byref(one))
            if not np.isfinite(self.one["logit"][0]):
                rejected += 1
                L.llama_sampler_apply(check_g, ctypes.byref(arr))
            L.llama_sampler_accept(check_g, tok)
            check.append(time.perf_counter() - t0)
            logits = self.decode([tok], len(prompt) + i)
        L.llama_sampler_free(full_g)
        L.llama_sampler_free(check_g)
        return full, check, rejected


def us(xs):
    return 1e6 * statistics.fmean(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", required=True, help="GGUF file")
    ap.add_argument("schemas", nargs="+", help="JSON Schema files")
    ap.add_argument("-n", type=int, default=128, help="most tokens generated per schema")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--request", default="Give one example that fits.")
    a = ap.parse_args()
    edgelm = edgelm_module()
    model = edgelm.Model.load(a.model)
    session = edgelm.Session(model, n_ctx=2048, n_threads=a.threads)
    lcpp = LlamaCpp(a.model, a.threads)
    print(f"model: {os.path.basename(a.model)}, vocabulary {model.n_vocab} tokens, {a.threads} threads, "
          f"greedy, teacher-forced on edgelm's constrained answer\n")
    print("| schema | tokens | edgelm us / token | llama.cpp full us / token | llama.cpp check-first us / token "
          "(refused) | full / edgelm | check-first / edgelm |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    all_e, all_f, all_c = [], [], []
    for path in a.schemas:
        schema_text = open(path).read()
        gbnf = edgelm.json_schema_to_grammar(schema_text)
        prompt = model.tokenize(prompt_text(edgelm, model, schema_text, a.request).encode(), True, True)
        tokens = generate(edgelm, model, session, prompt, gbnf, a.n)
        e = time_edgelm(edgelm, model, session, prompt, gbnf, tokens)
        f, c, rejected = lcpp.replay(prompt, gbnf, tokens)
        all_e += e
        all_f += f
        all_c += c
        print(f"| {os.path.basename(path)} | {len(tokens)} | {us(e):.1f} | {us(f):.1f} | {us(c):.1f} ({rejected}) | "
              f"{us(f) / us(e):.1f}x | {us(c) / us(e):.1f}x |", flush=True)
    print(f"| all | {len(all_e)} | {us(all_e):.1f} | {us(all_f):.1f} | {us(all_c):.1f} | "
          f"{us(all_f) / us(all_e):.1f}x | {us(all_c) / us(all_e):.1f}x |")


if __name__ == "__main__":
    main()
