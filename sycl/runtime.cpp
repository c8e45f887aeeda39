#include "runtime.h"

#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "kernel_sources.h"

namespace syclex = sycl::ext::oneapi::experimental;

namespace lowbit::xpu {
namespace {

const char* source_text(const char* name) {
  for (int i = 0; i < kNumKernelSources; ++i)
    if (std::strcmp(kKernelSources[i].name, name) == 0) return kKernelSources[i].text;
  throw std::logic_error(std::string("lowbit: no embedded SYCL kernel source named ") + name);
}

// -fno-sycl-device-lib=all: the kernels call no device-library function, and the runtime wheels do not ship
// the device-library bitcode that linking would otherwise look for (the build fails without it).
const std::vector<std::string>& build_options() {
  static const std::vector<std::string> options = [] {
    std::vector<std::string> o{"-fno-sycl-device-lib=all"};
    if (const char* extra = std::getenv("LOWBIT_SYCL_BUILD_OPTIONS")) {
      std::istringstream words(extra);
      for (std::string w; words >> w;) o.push_back(w);
    }
    return o;
  }();
  return options;
}

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

using Executable = sycl::kernel_bundle<sycl::bundle_state::executable>;

// The activation dtype a kernel name is for ("..._F32", "..._F16", "..._BF16"), as the value of LOWBIT_DTYPE that
// builds only that dtype's kernels of a source (kernels/common.h), or 0 (a kernel with no dtype: build them all).
// A first call then compiles a third of a source: the device backend's code generation, not the parse, is most of
// a build, and it is paid again in every process (the persistent cache keeps only the front end's output).
int dtype_variant(const std::string& name) {
  auto ends = [&](const char* suffix) {
    const size_t n = std::strlen(suffix);
    return name.size() > n && name.compare(name.size() - n, n, suffix) == 0;
  };
  return ends("_BF16") ? 3 : ends("_F16") ? 2 : ends("_F32") ? 1 : 0;
}

std::vector<std::string> options_for(int variant) {
  std::vector<std::string> o = build_options();
  if (variant != 0) o.push_back("-DLOWBIT_DTYPE=" + std::to_string(variant));
  return o;
}

Executable build_bundle(const sycl::context& ctx, const sycl::device& dev, const char* source, int variant) {
  const std::vector<std::string> options = options_for(variant);
  try {
    auto src = syclex::create_kernel_bundle_from_source(
        ctx, syclex::source_language::sycl, std::string(source_text(source)),
        syclex::properties{syclex::include_files{"lowbit_common.h", source_text("common.h")}});
    return syclex::build(src, std::vector<sycl::device>{dev}, syclex::properties{syclex::build_options{options}});
  } catch (const sycl::exception& e) {
    // errc::build carries the compiler's whole log in what(); anything else (no kernel compiler, an
    // unsupported device) is reported the same way, with where it happened.
    throw std::runtime_error(std::string("lowbit: building the SYCL kernels of ") + source + " for '" +
                             dev.get_info<sycl::info::device::name>() + "' failed (build options: " +
                             joined(options) + "):\n" + e.what());
  }
}

// (context, device, source, kernel): the build options are fixed per process, so they need not be in the key.
struct KernelKey {
  sycl::context ctx;
  sycl::device dev;
  std::string source, name;
  bool operator==(const KernelKey& o) const {
    return ctx == o.ctx && dev == o.dev && source == o.source && name == o.name;
  }
};

struct KernelKeyHash {
  size_t operator()(const KernelKey& k) const {
    size_t h = std::hash<sycl::context>()(k.ctx);
    for (size_t part : {std::hash<sycl::device>()(k.dev), std::hash<std::string>()(k.source),
                        std::hash<std::string>()(k.name)})
      h ^= part + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
  }
};

struct Cache {
  std::mutex mutex;  // held while building: a second caller waits for the first build rather than repeating it
  std::unordered_map<KernelKey, Executable, KernelKeyHash> bundles;  // key.name: "dtype <LOWBIT_DTYPE>"
  std::unordered_map<KernelKey, sycl::kernel, KernelKeyHash> kernels;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: SYCL objects must not outlive the runtime's own teardown
  return *c;
}

}  // namespace

sycl::queue& cpu_device_queue() {
  static sycl::queue* queue = [] {
    try {
      return new sycl::queue(sycl::cpu_selector_v, sycl::property::queue::in_order());
    } catch (const sycl::exception& e) {
      throw std::runtime_error(
          std::string("lowbit: no SYCL CPU device (") + e.what() +
          "). It comes from Intel's OpenCL CPU runtime: `pip install lowbit[sycl]` installs it, and lowbit points "
          "OCL_ICD_FILENAMES at its libintelocl.so unless that variable is already set; SYCL_UR_TRACE=1 shows "
          "which runtime adapters load");
    }
  }();
  return *queue;
}

sycl::kernel get_kernel(const sycl::queue& q, const char* source, const char* name) {
  Cache& c = cache();
  KernelKey key{q.get_context(), q.get_device(), source, name};
  std::lock_guard<std::mutex> lock(c.mutex);
  if (auto hit = c.kernels.find(key); hit != c.kernels.end()) return hit->second;
  const int variant = dtype_variant(name);
  KernelKey bundle_key{key.ctx, key.dev, source, "dtype " + std::to_string(variant)};  // one bundle per source and dtype
  auto bundle = c.bundles.find(bundle_key);
  if (bundle == c.bundles.end())
    bundle = c.bundles.emplace(bundle_key, build_bundle(key.ctx, key.dev, source, variant)).first;
  if (!bundle->second.ext_oneapi_has_kernel(name))
    throw std::logic_error(std::string("lowbit: the SYCL source ") + source + " has no kernel named " + name);
  return c.kernels.emplace(key, bundle->second.ext_oneapi_get_kernel(name)).first->second;
}

}  // namespace lowbit::xpu

// Plain C entry points for Python's ctypes (no Python C-API). Both return a message rather than throwing.
namespace {
// per thread: ctypes releases the GIL, and a caller reads the message of its own failed call right after it
thread_local std::string g_message;
}

// The SYCL CPU device's name, or "" when there is none (then lowbit_sycl_error() says why).
extern "C" __attribute__((visibility("default"))) const char* lowbit_sycl_cpu_device() {
  try {
    static const std::string name = lowbit::xpu::cpu_device_queue().get_device().get_info<sycl::info::device::name>();
    return name.c_str();
  } catch (const std::exception& e) {
    g_message = e.what();
    return "";
  }
}

extern "C" __attribute__((visibility("default"))) const char* lowbit_sycl_error() { return g_message.c_str(); }
