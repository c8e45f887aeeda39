// Which instruction-set variant runs: chosen once, on first use, from CPUID (the best native variant this CPU
// runs, opt-in ones excepted) or the LOWBIT_CPU_ISA environment variable (any variant this CPU runs, emulated ones included, so tests
// can force each of them).
//
// The variants and their order come from the lowbit_add_variant() calls in CMakeLists.txt. A variant's table
// starts as a copy of its parent's and is then filled by its own folder's table.cpp with the kernels it
// overrides (the fallback map of ggml-cpu, by field name), so a new variant writes only what it speeds up.
#pragma once

#include <string>
#include <vector>

#include "cpu/kernels/api.h"

namespace lowbit::cpu {

// Variants this CPU can execute: native ones best first (the first is the default), then native opt-in ones
// (not yet verified on hardware: never chosen unless asked for), then emulated ones ("<name>-emu", built only
// with LOWBIT_EMULATED_ISAS; never chosen unless asked for), "generic" last.
std::vector<std::string> supported_isas();
// The complete table of a variant this CPU runs, by name; nullptr for any other name.
const KernelTable* find_kernels(const std::string& name);
const KernelTable& active_kernels();          // the chosen table; never changes after the first call
// Empty when LOWBIT_CPU_ISA is unset or valid; otherwise why it was refused (the best variant is used).
const std::string& isa_request_error();

}  // namespace lowbit::cpu
