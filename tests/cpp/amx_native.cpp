// The real AMX instructions behind the tile emulation, compiled with -mamx-* and run by test_amx_emulation.cpp
// only when the CPU has AMX and the OS grants tile data.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace {

bool amx_here() {
#if defined(__linux__)
  if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-int8") || !__builtin_cpu_supports("amx-bf16"))
    return false;
  return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
  return false;
#endif
}

}  // namespace

bool native_amx_dp(const char* op, const uint8_t* config, const uint8_t* a, const uint8_t* b, uint8_t* c) {
  static const bool ok = amx_here();
  if (!ok) return false;
  __asm__ volatile("" ::: "memory");
  _tile_loadconfig(config);
  _tile_loadd(0, c, 64);
  _tile_loadd(1, a, 64);
  _tile_loadd(2, b, 64);
  if (op[0] == 'b') _tile_dpbf16ps(0, 1, 2);
  else if (op[0] == 's') _tile_dpbssd(0, 1, 2);
  else _tile_dpbusd(0, 1, 2);
  _tile_stored(0, c, 64);
  _tile_release();
  return true;
}
