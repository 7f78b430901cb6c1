// Scalar references for the 5-bit legacy formats (Q5_0, Q5_1) and the K-quants (Q2_K .. Q6_K,
// with their activation format Q8_K). reference_ops() forwards these types here.
//
//   const TypeOps* o = edgelm::kernels::reference_kquant_ops(DType::Q4_K);  // vec_dot_type Q8_K
#pragma once
#include "kernels/kernels.hpp"

namespace edgelm::kernels {

// nullptr for a type this file does not implement.
const TypeOps* reference_kquant_ops(DType t);

}  // namespace edgelm::kernels
