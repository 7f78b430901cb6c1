"""edgelm.embed: one vector per text, as a numpy array."""
from __future__ import annotations

from typing import List, Union

import numpy as np

from ._edgelm import Model, Session


def embed(model: Union[Model, str], texts: Union[str, List[str]], pooling: str = "mean", normalize: bool = True,
          n_threads: int = 0, n_layers: int = 0, batch: int = 8) -> np.ndarray:
    """Sentence vectors of texts: an (n_texts, n_embd) float32 array (a str gives (n_embd,)).

    Each text's final hidden states (after the output norm; with n_layers > 0, block n_layers'
    output: an early exit, often the better feature) are pooled: "mean" over its tokens or
    "last" token. normalize: unit length, for cosine similarity by dot product. Texts run
    `batch` at a time, each batch in as few forward passes as the batch size allows.
    """
    if pooling not in ("mean", "last"):
        raise ValueError(f"pooling must be 'mean' or 'last', not {pooling!r}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    m = Model.load(model) if isinstance(model, str) else model
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    if not all(isinstance(t, str) for t in items):
        raise TypeError("texts must be a str or a list of str")
    toks = [m.tokenize(t.encode("utf-8"), True, False) for t in items]
    for i, t in enumerate(toks):
        if not t:
            raise ValueError(f"text {i} is empty: there is nothing to embed")
    out = np.empty((len(items), m.n_embd), dtype=np.float32)
    longest = max((len(t) for t in toks), default=1)
    session = Session(m, n_ctx=longest, n_threads=n_threads, n_seq=min(batch, max(1, len(items))), n_layers=n_layers)
    for b in range(0, len(items), batch):
        group = toks[b:b + batch]
        rows = session.hidden_batch(group)
        at = 0
        for i, t in enumerate(group):
            h = rows[at:at + len(t)]
            out[b + i] = h.mean(axis=0) if pooling == "mean" else h[-1]
            at += len(t)
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out[0] if single else out
