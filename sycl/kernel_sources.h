// The kernel sources under sycl/kernels/, embedded at build time by sycl/embed_sources.cmake (so the library
// never has to find files on disk at run time).
#pragma once

namespace lowbit::xpu {

struct KernelSource {
  const char* name;  // file name under sycl/kernels/, e.g. "a16w4.sycl"; "common.h" is the shared header
  const char* text;
};

extern const KernelSource kKernelSources[];
extern const int kNumKernelSources;

}  // namespace lowbit::xpu
