// Scalar references for the 5-bit legacy formats (Q5_0, Q5_1) and the K-quants (Q2_K .. Q6_K,
// with their activation format Q8_K). reference_ops() forwards these types here.
//
//   const TypeOps* o = edgelm::kernels::reference_kquant_ops(DType::Q4_K);  // vec_dot_type Q8_K
#pragma once
#include "kernels/kernels.hpp"

namespace edgelm::kernels {

// nullptr for a type this file does not implement.
const TypeOps* reference_kquant_ops(DType t);

// llama.cpp's CPU backend sums some matrix products differently for several tokens than for
// one (Q4_K: 4-token tiles of its repacked GEMM, the n_tok % 4 tokens left over one at a time;
// Q6_K: a tiled GEMM from 8 tokens on). The dot product that reproduces token `tok` of an
// n_tok-token product, or nullptr where the type's vec_dot (the one-token order) serves.
VecDotFn reference_batch_dot(DType t, int64_t n_tok, int64_t tok);

}  // namespace edgelm::kernels
