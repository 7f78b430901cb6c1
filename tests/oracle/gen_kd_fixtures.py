#!/usr/bin/env python3
"""Oracle fixtures for the knowledge-distillation loss, produced by PyTorch (float64 autograd).

For rows of student logits s and teacher logits t over a small vocabulary, with hard targets y,
the loss of each case is

    alpha * F.cross_entropy(s, y) + (1 - alpha) * c * KL

with c = T * T (or 1) and KL one of:
  * forward, whole distribution: F.kl_div(F.log_softmax(s / T), F.softmax(t / T),
    reduction="batchmean"), exactly PyTorch's call;
  * forward or reverse over the teacher's top k: the teacher keeps its k likeliest words
    (log-probabilities at T) and the log of the mass left over; student and teacher are both
    coarsened to k + 1 buckets (each kept word, and all other words together) and
    KL(P || Q) (forward) or KL(Q || P) (reverse) of the buckets, averaged over the rows;
  * reverse, whole distribution: F.kl_div(F.log_softmax(t / T), F.softmax(s / T),
    reduction="batchmean").

It stores the loss and its gradient with respect to s, and the teacher's top-k rows (ids in
decreasing order of t, log-probabilities, log of the rest), so that edgelm's teacher rows are
checked too. Writes tests/fixtures/train/kd.json.

    python3 tests/oracle/gen_kd_fixtures.py

Needs `scripts/install-deps.sh --oracle` (torch). The default test run reads only the JSON.
Inputs: numpy.random.default_rng(7); s = 3 * normal, t = 4 * normal, rounded to float32; y
uniform; 6 rows of 64 words.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

N, V = 6, 64
CASES = [  # name, alpha, T, t_squared, reverse, k (V: whole distribution)
    ("forward_full_T3", 0.5, 3.0, True, False, V),
    ("forward_full_T1_no_t2", 0.2, 1.0, False, False, V),
    ("forward_top8_T3", 0.5, 3.0, True, False, 8),
    ("forward_top1_T2", 0.0, 2.0, True, False, 1),
    ("reverse_full_T3", 0.5, 3.0, True, True, V),
    ("reverse_top8_T3", 0.3, 3.0, True, True, 8),
    ("kl_only_top16_T5", 0.0, 5.0, True, False, 16),
]


def teacher_rows(t, T, k):
    logp = F.log_softmax(t / T, dim=-1)
    if k >= V:
        return None, logp, None
    order = torch.argsort(-t, dim=-1, stable=True)[:, :k]
    kept = torch.gather(logp, 1, order)
    mask = torch.ones_like(logp, dtype=torch.bool).scatter_(1, order, False)
    rest = torch.logsumexp(logp.masked_fill(~mask, float("-inf")), dim=-1)
    return order, kept, rest


def bucket_kl(s, T, ids, p_logp, p_lrest, reverse):
    q_all = F.log_softmax(s / T, dim=-1)
    q_kept = torch.gather(q_all, 1, ids)
    mask = torch.ones_like(q_all, dtype=torch.bool).scatter_(1, ids, False)
    q_rest = torch.logsumexp(q_all.masked_fill(~mask, float("-inf")), dim=-1)
    lp = torch.cat([p_logp, p_lrest[:, None]], dim=1)
    lq = torch.cat([q_kept, q_rest[:, None]], dim=1)
    if reverse:
        return (lq.exp() * (lq - lp)).sum() / s.shape[0]
    return (lp.exp() * (lp - lq)).sum() / s.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "train", "kd.json")))
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    s0 = (3 * rng.standard_normal((N, V))).astype(np.float32)
    t0 = (4 * rng.standard_normal((N, V))).astype(np.float32)
    y = rng.integers(0, V, N)
    cases = []
    for name, alpha, T, t2, reverse, k in CASES:
        s = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
        t = torch.tensor(t0, dtype=torch.float64)
        ids, logp, lrest = teacher_rows(t, T, k)
        c = T * T if t2 else 1.0
        if k >= V and not reverse:
            kl = F.kl_div(F.log_softmax(s / T, dim=-1), F.softmax(t / T, dim=-1), reduction="batchmean")
        elif k >= V:
            kl = F.kl_div(F.log_softmax(t / T, dim=-1), F.softmax(s / T, dim=-1), reduction="batchmean")
        else:
            kl = bucket_kl(s, T, ids, logp, lrest, reverse)
        loss = alpha * F.cross_entropy(s, torch.tensor(y)) + (1 - alpha) * c * kl
        loss.backward()
        case = {"name": name, "alpha": alpha, "temperature": T, "t_squared": t2, "reverse": reverse, "k": k,
                "loss": loss.item(), "kl": kl.item(), "grad": s.grad.numpy().ravel().tolist()}
        if ids is not None:
            case["teacher_ids"] = ids.numpy().ravel().tolist()
            case["teacher_logp"] = logp.numpy().ravel().tolist()
            case["teacher_log_rest"] = lrest.numpy().tolist()
        cases.append(case)
    with open(args.out, "w") as f:
        json.dump({"generator": "gen_kd_fixtures.py", "torch": torch.__version__, "rows": N, "vocab": V,
                   "student": s0.ravel().tolist(), "teacher": t0.ravel().tolist(), "targets": y.tolist(),
                   "cases": cases}, f, indent=0)
        f.write("\n")
    print(f"wrote {args.out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
