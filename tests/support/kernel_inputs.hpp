// Inputs for the kernel tests: seeded random rows, rows quantized by the scalar reference, and a
// TensorView over a quantized matrix held in a byte vector.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "edgelm/tensor.hpp"
#include "kernels/kernels.hpp"

namespace edgelm::test {

// n floats drawn from N(0, scale^2) by std::mt19937(seed): the same seed always gives the same row.
inline std::vector<float> random_row(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// `rows` consecutive rows of n floats from x, each quantized to type t by the scalar reference.
inline std::vector<std::byte> reference_quantize_rows(DType t, const float* x, int64_t n, int64_t rows) {
  const size_t rs = row_size(t, n);
  std::vector<std::byte> q(rs * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) kernels::reference_ops(t)->from_float(x + r * n, q.data() + r * rs, n);
  return q;
}

// A 2-D view of `rows` rows of n elements of type t over `data`, which it does not own.
inline TensorView matrix_view(DType t, int64_t n, int64_t rows, const std::vector<std::byte>& data) {
  TensorView v;
  v.type = t;
  v.n_dims = 2;
  v.ne = {n, rows, 1, 1};
  v.data = data.data();
  v.nbytes = data.size();
  return v;
}

}  // namespace edgelm::test
