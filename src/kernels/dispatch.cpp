// Chooses the implementation of each type's kernels. This build uses the scalar references
// (kernels/reference_*.cpp); SIMD kernel sets plug in here behind the same TypeOps interface.
#include <string>

#include "edgelm/error.hpp"
#include "kernels/kernels.hpp"

namespace edgelm::kernels {

const TypeOps& ops(DType t) {
  if (const TypeOps* o = reference_ops(t)) return *o;
  throw Error("tensor type " + std::string(dtype_name(t)) + " is not supported for computation",
              "convert the model to a floating-point, Q4/Q5/Q8 or K-quant type");
}

bool can_compute(DType t) { return reference_ops(t) != nullptr; }

std::string_view target_name() { return "scalar"; }

void quantize_row(DType type, const float* src, void* dst, int64_t n) {
  const TypeOps& o = ops(type);
  if (!o.from_float) throw Error("cannot quantize to " + std::string(dtype_name(type)));
  o.from_float(src, dst, n);
}

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  ops(type).to_float(src, dst, n);
}

void matmul_rows(const TensorView& w, const std::byte* xq, size_t xq_stride, float* y,
                 size_t y_stride, int64_t n_tok, int64_t r0, int64_t r1) {
  const TypeOps& o = ops(w.type);
  const int64_t n = w.ne[0];
  const size_t rb = w.row_bytes();
  for (int64_t r = r0; r < r1; ++r) {
    const std::byte* row = w.data + static_cast<size_t>(r) * rb;
    for (int64_t t = 0; t < n_tok; ++t)
      y[static_cast<size_t>(t) * y_stride + r] = o.vec_dot(n, row, xq + t * xq_stride);
  }
}

}  // namespace edgelm::kernels
