// The op schemas of lowbit, defined once for every backend. This file is in the always-loaded CPU library,
// so a graph exported with these ops resolves them without Python. Canonical formats and semantics:
// README.md ("Formats") and python/lowbit/reference.py.
#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY(lowbit, m) {
  // canonical weights -> packed panels for the CPU kernels (once, at quantize or load time)
  m.def("pack_a16w8(Tensor weight, Tensor scales) -> Tensor");
  m.def("pack_a16w4(Tensor weight, Tensor scales, Tensor? zeros, int group_size) -> Tensor");
  m.def("pack_da8w8(Tensor weight, Tensor scales) -> Tensor");
  // y[..., N] = x[..., K] @ dequant(W).T (+ bias), in x's dtype
  m.def("linear_a16w8(Tensor x, Tensor packed_weight, int out_features, Tensor? bias=None) -> Tensor");
  m.def(
      "linear_a16w4(Tensor x, Tensor packed_weight, int out_features, int group_size, Tensor? bias=None) "
      "-> Tensor");
  m.def("linear_da8w8(Tensor x, Tensor packed_weight, int out_features, Tensor? bias=None) -> Tensor");
}
