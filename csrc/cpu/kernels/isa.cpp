#include "cpu/kernels/isa.h"

#include <cstdlib>

namespace lowbit::cpu {
namespace {

struct Variant {
  const char* name;
  bool (*runs_here)();
  const KernelTable& (*table)();
};

bool always() { return true; }
bool has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_cpu_supports also checks that the OS saves the YMM state (XGETBV)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

// Best first: the first one that runs here (and is not above the requested one) is chosen.
const Variant kVariants[] = {
    {"avx2", has_avx2, avx2_kernels},
    {"generic", always, generic_kernels},
};

struct Choice {
  const KernelTable* table = nullptr;
  std::string error;
};

const Variant* best_runnable() {
  for (const Variant& v : kVariants)
    if (v.runs_here()) return &v;
  return nullptr;  // unreachable: generic always runs
}

Choice choose() {
  const char* env = std::getenv("LOWBIT_CPU_ISA");
  const std::string requested = env ? env : "";
  Choice c;
  c.table = &best_runnable()->table();
  if (requested.empty()) return c;
  for (const Variant& v : kVariants) {
    if (requested != v.name) continue;
    if (v.runs_here())
      c.table = &v.table();
    else
      c.error = "LOWBIT_CPU_ISA=" + requested + ": this CPU cannot run that variant";
    return c;
  }
  c.error = "LOWBIT_CPU_ISA=" + requested + " is not a known variant (known:";
  for (const Variant& v : kVariants) c.error += std::string(" ") + v.name;
  c.error += ")";
  return c;
}

const Choice& choice() {
  static const Choice c = choose();
  return c;
}

}  // namespace

std::vector<std::string> supported_isas() {
  std::vector<std::string> out;
  for (const Variant& v : kVariants)
    if (v.runs_here()) out.emplace_back(v.name);
  return out;
}

const KernelTable& active_kernels() { return *choice().table; }
const std::string& isa_request_error() { return choice().error; }

}  // namespace lowbit::cpu
