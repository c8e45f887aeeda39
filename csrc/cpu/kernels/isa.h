// Which instruction-set variant runs: chosen once, on first use, from CPUID and the LOWBIT_CPU_ISA
// environment variable (which may only lower the choice, so tests can force every variant this machine runs).
#pragma once

#include <string>
#include <vector>

#include "cpu/kernels/api.h"

namespace lowbit::cpu {

// Variants, best first. A name here is a folder under kernels/ and a table in api.h.
std::vector<std::string> supported_isas();  // those this CPU can execute
const KernelTable& active_kernels();          // the chosen table; never changes after the first call
// Empty when LOWBIT_CPU_ISA is unset or valid; otherwise why it was refused (the best variant is used).
const std::string& isa_request_error();

}  // namespace lowbit::cpu
