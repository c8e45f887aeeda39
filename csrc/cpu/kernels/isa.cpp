#include "cpu/kernels/isa.h"

#include <cstdlib>
#include <cstring>
#include <memory>

#include "lowbit_variants.inc"  // generated: the fill_kernels_* declarations and LOWBIT_VARIANT_LIST

namespace lowbit::cpu {
namespace {

struct Variant {
  const char* name;
  const char* parent;      // the variant whose table this one starts from (nullptr: none, it fills every field)
  bool emulated;           // built through SIMDe: correct anywhere, slow, chosen only when asked for
  bool opt_in;             // native but not yet verified on hardware: chosen only when asked for (OPT_IN)
  bool (*runs_here)();     // __builtin_cpu_supports also checks that the OS saves the vector state (XGETBV)
  void (*fill)(KernelTable&);
};

// Best first (the registry is generated in that order).
const Variant kVariants[] = {LOWBIT_VARIANT_LIST};

const Variant* find_variant(const std::string& name) {
  for (const Variant& v : kVariants)
    if (name == v.name) return &v;
  return nullptr;
}

// A variant runs here when the CPU has its features and those of every variant it inherits kernels from.
bool runs_here(const Variant& v) { return v.runs_here() && (v.parent == nullptr || runs_here(*find_variant(v.parent))); }

// Every field set: a variant without a parent must fill them all, and every other one inherits them.
bool complete(const KernelTable& t) {
  static_assert(sizeof(KernelTable) % sizeof(void*) == 0, "KernelTable holds pointers only");
  void* fields[sizeof(KernelTable) / sizeof(void*)];
  std::memcpy(fields, &t, sizeof t);
  for (void* f : fields)
    if (f == nullptr) return false;
  return true;
}

KernelTable build_table(const Variant& v) {
  KernelTable t{};
  if (v.parent) t = build_table(*find_variant(v.parent));
  v.fill(t);
  t.name = v.name;
  return t;
}

constexpr size_t kCount = sizeof(kVariants) / sizeof(kVariants[0]);

// The tables of the variants this CPU runs, built once on first use and never freed. Only those: a filler is
// compiled with its variant's flags (GCC may use AVX2 or AVX-512 instructions even to fill a table), so the
// table of a variant this CPU cannot run is never built.
struct Tables {
  std::unique_ptr<KernelTable> by_index[kCount];
  Tables() {
    for (size_t i = 0; i < kCount; ++i) {
      if (!runs_here(kVariants[i])) continue;
      by_index[i] = std::make_unique<KernelTable>(build_table(kVariants[i]));
      if (!complete(*by_index[i])) std::abort();  // a registry bug: a variant without parent left a field empty
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

const KernelTable* table_of(const Variant& v) { return tables().by_index[&v - kVariants].get(); }

struct Choice {
  const KernelTable* table = nullptr;
  std::string error;
};

Choice choose() {
  Choice c;
  for (const Variant& v : kVariants)
    if (!v.emulated && !v.opt_in && runs_here(v)) {
      c.table = table_of(v);
      break;
    }
  const char* env = std::getenv("LOWBIT_CPU_ISA");
  const std::string requested = env ? env : "";
  if (requested.empty()) return c;
  if (const Variant* v = find_variant(requested)) {
    if (runs_here(*v))
      c.table = table_of(*v);
    else
      c.error = "LOWBIT_CPU_ISA=" + requested + ": this CPU cannot run that variant";
    return c;
  }
  c.error = "LOWBIT_CPU_ISA=" + requested + " is not a known variant (known:";
  for (const Variant& v : kVariants) c.error += std::string(" ") + v.name;
  c.error += ")";
  const size_t n = requested.size();
  if (n > 4 && requested.compare(n - 4, 4, "-emu") == 0)
    c.error += "; emulated variants exist only in builds made with LOWBIT_EMULATED_ISAS=1 (make test)";
  return c;
}

const Choice& choice() {
  static const Choice c = choose();
  return c;
}

}  // namespace

std::vector<std::string> supported_isas() {
  std::vector<std::string> native, opt_in, emulated;
  for (const Variant& v : kVariants)
    if (runs_here(v)) (v.emulated ? emulated : v.opt_in ? opt_in : native).emplace_back(v.name);
  // generic stays last: the native ones CPUID may choose best-first (the first is the default), then the
  // opt-in ones, then the emulated ones
  const std::string last = native.back();
  native.pop_back();
  native.insert(native.end(), opt_in.begin(), opt_in.end());
  native.insert(native.end(), emulated.begin(), emulated.end());
  native.push_back(last);
  return native;
}

const KernelTable* find_kernels(const std::string& name) {
  const Variant* v = find_variant(name);
  return v ? table_of(*v) : nullptr;
}

const KernelTable& active_kernels() { return *choice().table; }
const std::string& isa_request_error() { return choice().error; }

}  // namespace lowbit::cpu
