// Tile configuration and the OS permission for tile data.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cpu/kernels/amx/amx.h"

#if defined(__linux__) && !defined(LOWBIT_SIMDE)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace lowbit::cpu::LOWBIT_VARIANT_NS {

LinearDriver parent_a16w8 = nullptr, parent_a16w4 = nullptr, parent_da8w8 = nullptr;

void Tiles::configure(int m0, int m1, int np) {
  TileConfig c;
  c.palette = 1;
  auto set = [&](int t, int rows) {
    if (rows == 0) return;  // unused: left unconfigured (rows = colsb = 0)
    c.rows[t] = uint8_t(rows);
    c.colsb[t] = 64;
  };
  set(kA0, m0);
  set(kA1, m1);
  set(kB0, 16);
  set(kB1, np == 2 ? 16 : 0);
  set(kC00, m0);
  set(kC01, np == 2 ? m0 : 0);
  set(kC10, m1);
  set(kC11, np == 2 ? m1 : 0);
  if (current_.palette == 1 && std::memcmp(&c, &current_, sizeof c) == 0) return;
  __asm__ volatile("" ::: "memory");  // GCC's ldtilecfg asm declares a read of 8 of the 64 bytes only
  _tile_loadconfig(&c);               // also zeroes every tile
  current_ = c;
}

Tiles::~Tiles() {
  if (current_.palette != 0) _tile_release();  // back to the init state: no tile data saved on context switches
}

namespace {

bool request_permission() {
#if defined(LOWBIT_SIMDE)
  const char* refuse = std::getenv("LOWBIT_AMX_EMULATE_REFUSAL");
  if (refuse == nullptr || refuse[0] != '1') return true;
  const char* why = "refused by LOWBIT_AMX_EMULATE_REFUSAL=1 (emulated OS)";
#elif defined(__linux__)
  // Linux 5.16+: tile data (XSTATE component 18) is off until the process asks for it.
  constexpr long kReqXcompPerm = 0x1023, kGetXcompPerm = 0x1022, kXtileData = 18;
  unsigned long granted = 0;
  if (syscall(SYS_arch_prctl, kGetXcompPerm, &granted) == 0 && (granted & (1ul << kXtileData))) return true;
  if (syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0) return true;
  const char* why = std::strerror(errno);
#else
  const char* why = "not Linux";
#endif
  std::fprintf(stderr,
               "lowbit: the OS refused AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM: %s); the amx variant runs "
               "its AVX-512 (avx512_bf16) kernels instead\n",
               why);
  return false;
}

}  // namespace

bool tiles_usable() {
  static const bool usable = request_permission();  // process-wide permission: once for every thread
  return usable;
}

}  // namespace lowbit::cpu::LOWBIT_VARIANT_NS
