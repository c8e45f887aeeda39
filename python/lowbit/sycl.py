"""lowbit's SYCL backend: the kernels under sycl/kernels/, compiled at run time by the oneAPI SYCL runtime.

XPU tensors reach them through torch.ops.lowbit.* (the host library registers the XPU dispatch key). CPU
tensors reach them through torch.ops.lowbit_sycl.* on the SYCL *CPU device*, which is how they are tested on
machines with no Intel GPU; the wrappers in lowbit.ops and QuantLinear take that route while the switch is on:

    with lowbit.sycl.route_cpu():          # or lowbit.sycl.route_cpu(True), or LOWBIT_SYCL_ON_CPU=1
        layer = QuantLinear.from_linear(linear, "a16w4")   # packs for the SYCL layout
        y = layer(x)                                        # SYCL kernels on the SYCL CPU device

The host library is loaded at `import lowbit` only when a SYCL runtime can be loaded (`pip install lowbit[sycl]`
installs one; an XPU build of torch brings its own). Without one, nothing is loaded and nothing is printed:
available() is False and unavailable_reason() says why.
"""

import ctypes
import os
import sys
from pathlib import Path
from typing import Optional, Tuple

import torch

from lowbit import _opmeta

LIBRARY = Path(__file__).resolve().parent / "liblowbit_sycl.so"

_loaded = False
_reason = "not loaded yet"
_cdll = None
_route_cpu = os.environ.get("LOWBIT_SYCL_ON_CPU", "") == "1"


def _point_opencl_at_installed_runtime() -> None:
    """The runtime wheels' OpenCL ICD file names a path that does not exist; the OpenCL loader finds Intel's CPU
    runtime only through OCL_ICD_FILENAMES. Set it (if unset) before the SYCL runtime first lists platforms."""
    lib = Path(sys.prefix) / "lib" / "libintelocl.so"
    if "OCL_ICD_FILENAMES" not in os.environ and lib.exists():
        os.environ["OCL_ICD_FILENAMES"] = str(lib)


def _load_sycl_runtime() -> None:
    """Loads libsycl.so.8 globally, so the host library's dependency resolves to it: the runtime wheels' copy
    in sys.prefix/lib, or one already in the process (an XPU build of torch) or on the library path."""
    wheel_copy = Path(sys.prefix) / "lib" / "libsycl.so.8"
    ctypes.CDLL(str(wheel_copy) if wheel_copy.exists() else "libsycl.so.8", mode=ctypes.RTLD_GLOBAL)


def load() -> bool:
    """Loads the host library if it was built and a SYCL runtime is importable. Never raises, never warns."""
    global _loaded, _reason, _cdll
    if _loaded:
        return True
    if not LIBRARY.exists():
        _reason = f"lowbit was built without its SYCL library ({LIBRARY.name} is missing)"
        return False
    try:
        _point_opencl_at_installed_runtime()
        _load_sycl_runtime()
    except OSError as e:
        _reason = f"no SYCL runtime could be loaded ({e}); install one with `pip install lowbit[sycl]`"
        return False
    try:
        torch.ops.load_library(str(LIBRARY))
    except (OSError, RuntimeError) as e:
        _reason = f"{LIBRARY.name} did not load: {e}"
        return False
    _cdll = ctypes.CDLL(str(LIBRARY))
    for name in ("lowbit_sycl_cpu_device", "lowbit_sycl_error"):
        getattr(_cdll, name).restype = ctypes.c_char_p
    _register_fakes()
    _loaded, _reason = True, ""
    return True


def load_at_import() -> None:
    """`import lowbit` calls this: load() quietly, except that LOWBIT_SYCL_ON_CPU=1 is an explicit request for
    the SYCL kernels, so it fails the import when they cannot be had rather than quietly running others."""
    if not load() and _route_cpu:
        raise ImportError(f"lowbit: LOWBIT_SYCL_ON_CPU=1 but the SYCL backend is unavailable: {_reason}")


def available() -> bool:
    """True when the SYCL host library is loaded (XPU kernels registered, lowbit_sycl ops defined)."""
    return _loaded


def unavailable_reason() -> str:
    """Why available() is False ("" when it is True)."""
    return _reason


def cpu_device() -> str:
    """The name of the SYCL CPU device the lowbit_sycl ops run on; RuntimeError naming the cause if none."""
    if not _loaded:
        raise RuntimeError(f"lowbit: the SYCL backend is unavailable: {_reason}")
    name = _cdll.lowbit_sycl_cpu_device().decode()
    if not name:
        raise RuntimeError(_cdll.lowbit_sycl_error().decode())
    return name


class route_cpu:
    """Route CPU tensors to the SYCL kernels on the SYCL CPU device (True) or to the native CPU kernels (False).

    Takes effect on calling, like torch.set_grad_enabled, and also works as a context manager that restores the
    previous setting. Weights packed under one setting are in that backend's layout: QuantLinear repacks when
    the setting changes; the functional ops reject a mismatched layout. LOWBIT_SYCL_ON_CPU=1 sets it at start.
    """

    def __init__(self, enabled: bool = True):
        global _route_cpu
        if enabled and not _loaded:
            raise RuntimeError(f"lowbit: cannot route CPU tensors to SYCL: {_reason}")
        self._previous, _route_cpu = _route_cpu, bool(enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _route_cpu
        _route_cpu = self._previous
        return False


def routing_cpu() -> bool:
    """Whether CPU tensors currently go to the SYCL kernels (see route_cpu)."""
    return _route_cpu and _loaded


def handles(device: torch.device) -> bool:
    """Whether tensors on `device` run on the SYCL kernels (XPU, or CPU while routed) rather than the CPU ones."""
    return device.type == "xpu" or (device.type == "cpu" and routing_cpu())


def ops_for(device: torch.device):
    """The op namespace that runs tensors on `device`: lowbit_sycl for routed CPU tensors, lowbit otherwise
    (which dispatches XPU tensors to this library and CPU tensors to the native kernels)."""
    return torch.ops.lowbit_sycl if device.type == "cpu" and routing_cpu() else torch.ops.lowbit


# ------------------------------------------------------------------ packed layouts (sycl/kernels/pack.sycl)

def packed_shape(mode: str, out_features: int, in_features: int, group_size: Optional[int] = None
                 ) -> Tuple[int, int, int, int]:
    """uint8 [panels, rows, 64, 4]: panels of 64 output columns, each rows x 64 32-bit words (weights: four int8
    or eight int4 of one column per word; then a row of fp32 scales, or for int4 K/g rows of scales and K/g rows
    of zero points). lowbit.backends.SYCL.packed_shape, by mode name."""
    from lowbit import backends, modes
    return backends.SYCL.packed_shape(modes.get(mode), out_features, in_features, group_size)


def _register_fakes() -> None:
    _opmeta.register("lowbit_sycl")  # fake kernels (checking what the C++ checks) and the input gradient
