"""Loads the native CPU library into torch and reads its plain C entry points with ctypes."""

import ctypes
from pathlib import Path

import torch

_DIR = Path(__file__).resolve().parent
CPU_LIBRARY = _DIR / "liblowbit_cpu.so"
_cdll = None


def load() -> None:
    global _cdll
    if _cdll is None:
        if not CPU_LIBRARY.exists():
            raise ImportError(
                f"lowbit: the native library {CPU_LIBRARY} is missing; build it with `pip install .` "
                "(or `make build` in a checkout)"
            )
        torch.ops.load_library(str(CPU_LIBRARY))  # registers torch.ops.lowbit.* (schemas + CPU kernels)
        _cdll = ctypes.CDLL(str(CPU_LIBRARY))      # same handle: dlopen returns the already loaded library
        for name in ("lowbit_cpu_isa", "lowbit_cpu_isa_error", "lowbit_cpu_supported_isas"):
            getattr(_cdll, name).restype = ctypes.c_char_p
    # checked on every import, not only the first: a second `import lowbit` after a refused LOWBIT_CPU_ISA must
    # fail again rather than run another variant than the one asked for
    error = _cdll.lowbit_cpu_isa_error().decode()
    if error:
        raise RuntimeError(f"lowbit: {error}; supported here: {', '.join(supported_cpu_isas())}")


def cpu_isa() -> str:
    """The CPU kernel variant in use (chosen once from CPUID; LOWBIT_CPU_ISA may force a lower one)."""
    return _cdll.lowbit_cpu_isa().decode()


def supported_cpu_isas() -> list:
    """Every CPU kernel variant this machine can run, best first."""
    return _cdll.lowbit_cpu_supported_isas().decode().split(",")

