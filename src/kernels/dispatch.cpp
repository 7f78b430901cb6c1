// Chooses the implementation of each type's kernels for the running CPU: the best Highway
// target compiled in (simd_quant.cpp, simd_float.cpp), or the one EDGELM_SIMD names.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "edgelm/error.hpp"
#include "hwy/targets.h"
#include "kernels/kernels.hpp"
#include "kernels/reference_kquants.hpp"
#include "kernels/simd.hpp"

namespace edgelm::kernels {
namespace {

// Types with scalar kernels only (and the reference set's K-quants): one dot product per
// (row, token), in the order llama.cpp uses for that token of an n_tok-token product.
void reference_batch_matmul(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y,
                            size_t y_stride, int64_t n_tok, int64_t r0, int64_t r1) {
  const TypeOps& o = *reference_ops(w.type);
  const int64_t n = w.ne[0];
  const size_t rb = w.row_bytes();
  for (int64_t t = 0; t < n_tok; ++t) {
    const VecDotFn dot = reference_batch_dot(w.type, n_tok, t);
    const VecDotFn f = dot ? dot : o.vec_dot;
    for (int64_t r = r0; r < r1; ++r)
      y[static_cast<size_t>(t) * y_stride + r] = f(n, w.data + static_cast<size_t>(r) * rb, xq + t * xq_stride);
  }
}

}  // namespace

namespace simd {

const TypeOps* KernelSet::type_ops(DType t) const {
  switch (t) {
    case DType::F32: return &flt.f32;
    case DType::F16: return &flt.f16;
    case DType::BF16: return &flt.bf16;
    case DType::Q8_0: return &quant.q8_0;
    case DType::Q8_1: return &quant.q8_1;
    case DType::Q4_0: return &quant.q4_0;
    case DType::Q4_1: return &quant.q4_1;
    case DType::Q8_K: return &kquant.q8_k;
    case DType::Q5_0: return &kquant.q5_0;
    case DType::Q5_1: return &kquant.q5_1;
    case DType::Q2_K: return &kquant.q2_k;
    case DType::Q3_K: return &kquant.q3_k;
    case DType::Q4_K: return &kquant.q4_k;
    case DType::Q5_K: return &kquant.q5_k;
    case DType::Q6_K: return &kquant.q6_k;
    default: return nullptr;
  }
}

namespace {

struct Registry {
  std::vector<std::unique_ptr<KernelSet>> sets;  // best first
  std::unique_ptr<KernelSet> reference;          // EDGELM_SIMD=reference
  const KernelSet* chosen = nullptr;
};

// y[t, r] = one reference dot product per (row, token): the oracle for the matmul kernels.
void reference_matmul(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y,
                      size_t y_stride, int64_t n_tok, int64_t r0, int64_t r1) {
  const TypeOps& o = *reference_ops(w.type);
  const int64_t n = w.ne[0];
  const size_t rb = w.row_bytes();
  for (int64_t r = r0; r < r1; ++r) {
    const std::byte* row = w.data + static_cast<size_t>(r) * rb;
    for (int64_t t = 0; t < n_tok; ++t)
      y[static_cast<size_t>(t) * y_stride + r] = o.vec_dot(n, row, xq + t * xq_stride);
  }
}


// The scalar references as a kernel set (speed baselines and debugging; not in supported()).
std::unique_ptr<KernelSet> reference_set(const KernelSet& like) {
  auto ks = std::make_unique<KernelSet>(like);
  ks->name = "reference";
  ks->target = 0;
  ks->quant.q8_0 = *reference_ops(DType::Q8_0);
  ks->quant.q8_1 = *reference_ops(DType::Q8_1);
  ks->quant.q4_0 = *reference_ops(DType::Q4_0);
  ks->quant.q4_1 = *reference_ops(DType::Q4_1);
  ks->quant.matmul = reference_matmul;
  ks->kquant.q8_k = *reference_ops(DType::Q8_K);
  ks->kquant.q5_0 = *reference_ops(DType::Q5_0);
  ks->kquant.q5_1 = *reference_ops(DType::Q5_1);
  ks->kquant.q2_k = *reference_ops(DType::Q2_K);
  ks->kquant.q3_k = *reference_ops(DType::Q3_K);
  ks->kquant.q4_k = *reference_ops(DType::Q4_K);
  ks->kquant.q5_k = *reference_ops(DType::Q5_K);
  ks->kquant.q6_k = *reference_ops(DType::Q6_K);
  ks->kquant.matmul = reference_batch_matmul;
  ks->flt.f32 = *reference_ops(DType::F32);
  ks->flt.f16 = *reference_ops(DType::F16);
  ks->flt.bf16 = *reference_ops(DType::BF16);
  ks->flt.matmul = reference_matmul;
  ks->flt.rmsnorm = rmsnorm;
  ks->flt.softmax = softmax;
  ks->flt.swiglu = swiglu;
  ks->flt.geglu = geglu;
  ks->flt.add = add_inplace;
  ks->flt.attend = attend_reference;
  return ks;  // rope and to_f16 stay SIMD: they have no separate reference function
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

const Registry& registry() {
  static const Registry r = [] {
    Registry reg;
    for (int64_t t : compiled_targets()) {
      auto ks = std::make_unique<KernelSet>();
      ks->name = hwy::TargetName(t);
      ks->target = t;
      ks->quant = quant_kernels(t);
      ks->kquant = kquant_kernels(t);
      ks->flt = float_kernels(t);
      reg.sets.push_back(std::move(ks));
    }
    if (reg.sets.empty()) throw Error("internal: no SIMD kernel set is usable on this CPU");
    reg.chosen = reg.sets.front().get();
    // EDGELM_SIMD=<target> benchmarks a lesser instruction set on a better CPU.
    reg.reference = reference_set(*reg.sets.front());
    if (const char* want = std::getenv("EDGELM_SIMD"); want && *want) {
      const KernelSet* found = same_name(want, "reference") ? reg.reference.get() : nullptr;
      for (const auto& ks : reg.sets)
        if (same_name(ks->name, want)) found = ks.get();
      if (!found) {
        std::string names;
        for (const auto& ks : reg.sets) names += std::string(names.empty() ? "" : ", ") + ks->name;
        throw Error("EDGELM_SIMD=" + std::string(want) + " is not an instruction set this build can use here",
                    "use one of: " + names);
      }
      reg.chosen = found;
    }
    return reg;
  }();
  return r;
}

}  // namespace

const KernelSet& best() { return *registry().chosen; }

std::vector<const KernelSet*> supported() {
  std::vector<const KernelSet*> out;
  for (const auto& ks : registry().sets) out.push_back(ks.get());
  return out;
}

}  // namespace simd

const TypeOps& ops(DType t) {
  if (const TypeOps* o = simd::best().type_ops(t)) return *o;
  if (const TypeOps* o = reference_ops(t)) return *o;  // types with scalar kernels only
  throw Error("tensor type " + std::string(dtype_name(t)) + " is not supported for computation",
              "convert the model to F16, BF16, Q8_0, Q4_0 or Q4_1");
}

bool can_compute(DType t) { return reference_ops(t) != nullptr; }

std::string_view target_name() { return simd::best().name; }

void quantize_row(DType type, const float* src, void* dst, int64_t n) {
  const TypeOps& o = ops(type);
  if (!o.from_float) throw Error("cannot quantize to " + std::string(dtype_name(type)));
  o.from_float(src, dst, n);
}

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  ops(type).to_float(src, dst, n);
}

void gemm(const GemmArgs& g) { simd::best().flt.gemm(g); }

void matmul_rows(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y,
                 size_t y_stride, int64_t n_tok, int64_t r0, int64_t r1) {
  const simd::KernelSet& ks = simd::best();
  switch (w.type) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q8_0:
      return ks.quant.matmul(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return ks.flt.matmul(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return ks.kquant.matmul(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
    default: break;
  }
  if (!reference_ops(w.type)) ops(w.type);  // a type without kernels: ops() throws the error
  reference_batch_matmul(w, xq, xq_stride, y, y_stride, n_tok, r0, r1);
}

void matmul_rows_exact(const TensorView& w, const float* x, size_t x_stride, float* y, size_t y_stride, int64_t n_tok,
                       int64_t r0, int64_t r1) {
  constexpr int64_t kPanel = 128;  // rows dequantized at once
  if (r0 >= r1 || n_tok <= 0) return;
  const int64_t n_in = w.ne[0];
  thread_local std::vector<float> panel;
  panel.resize(static_cast<size_t>(std::min(kPanel, r1 - r0) * n_in));
  for (int64_t p0 = r0; p0 < r1; p0 += kPanel) {
    const int64_t p1 = std::min(r1, p0 + kPanel);
    for (int64_t r = p0; r < p1; ++r) dequantize_row(w.type, w.row(r), panel.data() + (r - p0) * n_in, n_in);
    gemm({.trans_b = true, .K = n_in, .a = x, .lda = x_stride, .b = panel.data(), .ldb = static_cast<size_t>(n_in),
          .c = y + p0, .ldc = y_stride, .m0 = 0, .m1 = n_tok, .n0 = 0, .n1 = p1 - p0});
  }
}

}  // namespace edgelm::kernels
