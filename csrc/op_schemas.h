// lowbit's op schemas, written once. csrc/ops.cpp defines them as lowbit:: (every backend registers its
// kernels there); the SYCL library defines them again as lowbit_sycl::, the namespace through which CPU
// tensors reach the SYCL kernels (sycl/registration.cpp).
#pragma once

#include <torch/csrc/stable/library.h>

namespace lowbit {

inline void define_op_schemas(torch::stable::detail::StableLibrary& m) {
  // canonical weights -> packed panels for the device's kernels (once, at quantize or load time)
  m.def("pack_a16w8(Tensor weight, Tensor scales) -> Tensor");
  m.def("pack_a16w4(Tensor weight, Tensor scales, Tensor? zeros, int group_size) -> Tensor");
  m.def("pack_da8w8(Tensor weight, Tensor scales) -> Tensor");
  m.def("pack_da8w4(Tensor weight, Tensor scales, Tensor? zeros, int group_size) -> Tensor");
  // y[..., N] = x[..., K] @ dequant(W).T (+ bias), in x's dtype
  m.def("linear_a16w8(Tensor x, Tensor packed_weight, int out_features, Tensor? bias=None) -> Tensor");
  m.def(
      "linear_a16w4(Tensor x, Tensor packed_weight, int out_features, int group_size, Tensor? bias=None) "
      "-> Tensor");
  m.def("linear_da8w8(Tensor x, Tensor packed_weight, int out_features, Tensor? bias=None) -> Tensor");
  m.def(
      "linear_da8w4(Tensor x, Tensor packed_weight, int out_features, int group_size, Tensor? bias=None) "
      "-> Tensor");
}

}  // namespace lowbit
