// The torch-free half of lowbit's SYCL backend: which queue runs SYCL kernels over CPU tensors, how the kernel
// sources under kernels/ become sycl::kernel objects (compiled at run time by the SYCL runtime's kernel
// compiler, for the device in use), and how a free-function kernel is launched from ordinary host code.
//
// There is no SYCL device compiler at build time: the host code here is compiled by g++ against the SYCL
// headers and contains no kernel lambdas. Kernels are `extern "C"` free functions in the .sycl sources,
// embedded in the library as strings and built on first use.
#pragma once

#include <sycl/sycl.hpp>

#include <cstddef>
#include <string>

namespace lowbit::xpu {

// The in-order queue on the SYCL CPU device (Intel's OpenCL CPU runtime), created on first use. It runs the
// kernels over CPU tensors' memory directly (the device supports system allocations). Throws
// std::runtime_error naming the likely cause when the process has no SYCL CPU device.
sycl::queue& cpu_device_queue();

// Kernel `name` of kernels/<source> (e.g. "a16w4.sycl"), built for q's context and device. Built once per
// (context, device, source, build options) per process and kept; across processes the SYCL persistent cache
// (SYCL_CACHE_PERSISTENT=1) keeps the device binaries. A build failure throws std::runtime_error carrying the
// compiler's log. Extra build options: LOWBIT_SYCL_BUILD_OPTIONS (space-separated), read once.
sycl::kernel get_kernel(const sycl::queue& q, const char* source, const char* name);

// Enqueues kernel k over an nd_range. Arguments are passed by value: pointers must be USM allocations or, on a
// device with system-allocation support, ordinary host memory.
template <int Dims, class... Args>
sycl::event launch(sycl::queue& q, const sycl::kernel& k, const sycl::nd_range<Dims>& range, const Args&... args) {
  return q.submit([&](sycl::handler& h) {
    h.set_args(args...);
    h.parallel_for(range, k);
  });
}

}  // namespace lowbit::xpu
