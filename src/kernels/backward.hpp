// Backward passes of the transformer block's element-wise operations and attention, each the
// transpose of its forward in kernels.hpp / simd.hpp: given dL/d(output), dL/d(input) and, for
// weighted ops, the weight gradient accumulated. Scalar float32 references with sums in double;
// the training engine's per-row building blocks.
//
//   kernels::rmsnorm_backward(x, w, dy, n, eps, dx, dw);  // dx written, dw += (when not null)
//
// The derivatives are those of the exact functions (silu with std::exp, GELU's tanh form):
// the forward's rounding choices that match llama.cpp bit for bit (exp_poly, half-precision
// tables) are approximations of these and have no derivative of their own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgelm::kernels {

// out = x / sqrt(mean(x^2) + eps) * w  ->  dx (overwritten); dw += dy * x / rms when dw is not
// null; w null means no weight (all ones).
void rmsnorm_backward(const float* x, const float* w, const float* dy, int64_t n, float eps, float* dx, float* dw);

// out = (x - mean) / sqrt(var + eps) * w + b  ->  dx (overwritten); dw, db += when not null.
void layer_norm_backward(const float* x, const float* w, const float* dy, int64_t n, float eps, float* dx, float* dw,
                         float* db);

// RoPE is a rotation of each pair, so its backward rotates the gradient back: in place on
// n_heads heads of head_dim floats, with the cos/sin table the forward used (simd::rope_angles).
void rope_backward(float* d, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos, const float* sin,
                   bool neox);

// out = silu(gate) * up  ->  dgate, dup (overwritten).
void swiglu_backward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate, float* dup);

// out = gelu(gate) * up with GELU's tanh form evaluated in double: the training forward's
// GeGLU, whose derivative geglu_backward is (inference uses geglu()'s half-precision table, as
// llama.cpp does, whose rounding of 2^-11 relative would show in the gradients).
void geglu_exact(const float* gate, const float* up, float* out, int64_t n);

// out = gelu(gate) * up with GELU's tanh form  ->  dgate, dup (overwritten).
void geglu_backward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate, float* dup);

// y = cap * tanh(x / cap), given y  ->  dx (overwritten; may alias dy).
void softcap_backward(const float* y, const float* dy, int64_t n, float cap, float* dx);

// One query head's attention over positions [0, n): scores s_j = scale * c(q . k_j) with
// c(z) = cap * tanh(z / cap) when softcap > 0 (else c(z) = z), p = softmax(s),
// out = sum_j p_j v_j. Given the forward's weights p and dL/dout (head_dim floats): dq is
// written, dk_j and dv_j (rows k_stride / v_stride floats apart) are accumulated.
void attention_backward(const float* q, const float* k, size_t k_stride, const float* v, size_t v_stride,
                        const float* p, const float* dout, int64_t n, int64_t head_dim, float scale, float softcap,
                        float* dq, float* dk, float* dv);

// The forward twin of attention_backward, for training: one query head over positions [0, n),
// exact (std::exp, sums in double), writes out (head_dim floats) and returns the log-sum-exp
// of the scores, from which attention_weights() recomputes p for the backward pass instead of
// keeping n weights per head. `scores` is scratch for n floats.
float attention_head(const float* q, const float* k, size_t k_stride, const float* v, size_t v_stride, int64_t n,
                     int64_t head_dim, float scale, float softcap, float* scores, float* out);
// p_j = exp(s_j - lse) for the scores of attention_head.
void attention_weights(const float* q, const float* k, size_t k_stride, int64_t n, int64_t head_dim, float scale,
                       float softcap, float lse, float* p);

// Causal attention of one query head over one whole sequence at once, for training: query i
// (position i, row i of q) attends keys and values [first(i), i], first(i) = 0, or with a
// sliding window of `window` > 0 positions max(0, i - window + 1). Scores as attention_head's
// (rounded to float), p = exp(s - lse) with lse rounded to float, so that the backward pass
// recomputes exactly the weights the forward used. Matrix products through kernels::gemm over
// blocks of kSeqAttnRows queries; `scratch` is resized as needed.
inline constexpr int64_t kSeqAttnRows = 64;
struct SeqAttention {
  int64_t n = 0, head_dim = 0;
  float scale = 1, softcap = 0;
  int64_t window = 0;
  const float* q = nullptr;
  size_t q_stride = 0;
  const float* k = nullptr;
  size_t k_stride = 0;
  const float* v = nullptr;
  size_t v_stride = 0;
  const float* lse = nullptr;  // one per query, lse_stride apart (the forward's, read by backward)
  size_t lse_stride = 1;
};
// out row i (out_stride floats apart) = sum_j p_ij v_j; each query's log-sum-exp to
// lse_out[i * a.lse_stride] (a.lse is not read).
void attention_forward_seq(const SeqAttention& a, float* out, size_t out_stride, float* lse_out,
                           std::vector<float>& scratch);
// Given dL/d(out): dq written (dq_stride apart); dk, dv (k_stride / v_stride apart, as k and v)
// accumulated.
void attention_backward_seq(const SeqAttention& a, const float* dout, size_t dout_stride, float* dq, size_t dq_stride,
                            float* dk, float* dv, std::vector<float>& scratch);

// The two transposed products of y = W x (W: n_out rows of n_in floats, y_t = W x_t), float32:
//   matmul_backward_input:  dx_t (+)= W^T dy_t for tokens [t0, t1)  (written, or added to)
//   matmul_backward_weight: dW[r] += sum_t dy_t[r] x_t for rows [r0, r1) of W
// Threads split tokens for the first and rows for the second, so neither has shared writes.
// Both are kernels::gemm (its blocked float32 sums).
void matmul_backward_input(const float* dy, size_t dy_stride, const float* w, int64_t n_out, int64_t n_in, int64_t t0,
                           int64_t t1, float* dx, size_t dx_stride, bool accumulate);
void matmul_backward_weight(const float* dy, size_t dy_stride, const float* x, size_t x_stride, int64_t n_tok,
                            int64_t n_in, int64_t r0, int64_t r1, float* dw);

// Softmax cross-entropy over a vocabulary read in chunks, so that no tokens x vocabulary matrix
// is ever held: logsumexp_add() folds each chunk of logits into a running (max, sum), then the
// loss of target t is logsumexp() - logit[t], and each chunk's gradient
// dlogit = scale * (softmax - onehot(t)) comes from xent_backward_chunk().
struct LogSumExp {
  float max = -__builtin_huge_valf();
  double sum = 0;  // sum of exp(x - max)
  void add(const float* x, int64_t n);
  float value() const;
};
// `target` is the target's index within this chunk, or -1 when it lies in another chunk.
void xent_backward_chunk(const float* logits, int64_t n, float logsumexp, int64_t target, float scale, float* dlogits);

// Knowledge distillation. A teacher's distribution over n words at temperature T, as stored
// for one position: the log-probabilities of k words (`ids`, or words 0..n-1 in order when ids
// is null and k == n) and the log of the probability left over for the other n - k words
// (-inf when none is). The student's distribution softmax(logits / T) is compared bucket by
// bucket: each listed word is a bucket, the unlisted words together are one more, so a
// teacher cut to its top k keeps its exact total mass; with the whole distribution it is the
// plain KL divergence.
struct TeacherRow {
  const int32_t* ids = nullptr;
  const float* logp = nullptr;
  int64_t k = 0;
  float log_rest = -__builtin_huge_valf();
};
// The teacher's row from its logits: the k largest (ties: lower id first) in decreasing order,
// their log-probabilities at temperature T and the log of the rest (sums in double). k >= n
// writes the whole distribution in word order (ids untouched). Returns log_rest.
float teacher_top_k(const float* logits, int64_t n, float T, int64_t k, int32_t* ids, float* logp);
// KL(teacher || student) (forward) or KL(student || teacher) (reverse) of one position; when
// dlogits is not null, weight * dKL/dlogits is added to it. `member`: scratch.
double distill_row(const float* logits, int64_t n, const TeacherRow& t, float T, bool reverse, float weight,
                   float* dlogits, std::vector<uint8_t>& member);
// One position's distillation loss ce_weight * CE(logits, target) + kd_weight * KL; when
// dlogits is not null (and not `logits`) it gets scale * d(loss)/d(logits).
double distill_xent_row(const float* logits, int64_t n, int64_t target, const TeacherRow& t, float T, bool reverse,
                        float ce_weight, float kd_weight, float scale, float* dlogits, std::vector<uint8_t>& member);

}  // namespace edgelm::kernels
