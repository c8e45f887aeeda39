"""The kernel backends as objects: which tensors each runs, its op namespace, its packed layouts.

  CPU   the native C++ kernels (csrc/cpu), packed uint8 [panels of 16 columns, bytes]
  SYCL  the SYCL kernels (sycl/), on XPU tensors, or on CPU tensors while lowbit.sycl.route_cpu is on (the SYCL CPU
        device), packed uint8 [panels of 64 columns, rows, 64, 4] (64 32-bit words per row)

A packing is in exactly one backend's layout, told apart by rank (of_packed). A mode's layout on a backend comes
from the mode's description (lowbit.modes); a mode without one has no kernels there.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from lowbit import layouts


class Backend:
    name = ""
    panel = 0   # output columns per packed panel
    rank = 0    # dimensions of its packed tensors

    def layout(self, mode) -> layouts.Layout:
        """`mode`'s packed layout here (a lowbit.modes.Mode); NotImplementedError if it has no kernels here."""
        found = mode.layouts.get(self.name)
        if found is None:
            raise NotImplementedError(f"lowbit: {mode.name} has no {self.label} kernels")
        return found

    def panels(self, n: int) -> int:
        return (n + self.panel - 1) // self.panel

    def packed_shape(self, mode, n: int, k: int, group_size: Optional[int] = None,
                     offsets: bool = False) -> Tuple[int, ...]:
        """The packed tensor's shape; `offsets`: int4 with float offsets (NotImplementedError if this backend's
        layout of `mode` has no such form)."""
        return (self.panels(n), self.panel_size(mode, k, group_size, offsets), *self._trailing)

    def panel_size(self, mode, k: int, group_size: Optional[int] = None, offsets: bool = False) -> int:
        layout = self.layout(mode)
        if not offsets:
            return layout.panel_size(k, group_size)
        if layout.offsets_size is None:
            raise NotImplementedError(f"lowbit: {mode.name} with float offsets has no {self.label} kernels yet "
                                      "(use uint8 zero points there)")
        return layout.offsets_size(k, group_size)

    def panel_sizes(self, mode, k: int, group_size: Optional[int] = None) -> Tuple[int, ...]:
        """Every panel size a packing of `mode` for (K, group_size) may have here (zero points, float offsets)."""
        layout = self.layout(mode)
        sizes = (layout.panel_size(k, group_size),)
        return sizes + ((layout.offsets_size(k, group_size),) if layout.offsets_size is not None else ())

    def unpack(self, mode, packed: Tensor, n: int, k: int, group_size: Optional[int] = None,
               symmetric: bool = True) -> layouts.Canonical:
        """The canonical tensors `packed` (this backend's packing of `mode`) was made from."""
        return self.layout(mode).unpack(packed, n, k, group_size, symmetric)

    def owns(self, packed: Tensor) -> bool:
        """Whether `packed` is in this backend's layout."""
        return packed.dim() == self.rank

    def ops(self, device: torch.device):
        """The op namespace through which tensors on `device` reach this backend's kernels."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"lowbit.backends.{self.name.upper()}"


class _Cpu(Backend):
    name, label, panel, rank = "cpu", "native CPU", layouts.CPU_PANEL, 2
    _trailing = ()

    def ops(self, device):
        return torch.ops.lowbit


class _Sycl(Backend):
    name, label, panel, rank = "sycl", "SYCL", layouts.SYCL_PANEL, 4
    _trailing = (layouts.SYCL_PANEL, 4)

    def ops(self, device):
        # lowbit:: dispatches XPU tensors to the SYCL library; CPU tensors reach it through lowbit_sycl::
        return torch.ops.lowbit_sycl if device.type == "cpu" else torch.ops.lowbit


CPU = _Cpu()
SYCL = _Sycl()
ALL = (CPU, SYCL)


def for_device(device: torch.device, route_cpu: Optional[bool] = None) -> Backend:
    """The backend that runs tensors on `device`: SYCL for XPU, and for CPU while lowbit.sycl.route_cpu is on
    (`route_cpu`: that switch, read once by a caller that packs and runs with one decision); CPU otherwise."""
    if device.type == "xpu":
        return SYCL
    if device.type == "cpu":
        if route_cpu is None:
            from lowbit import sycl  # lowbit.sycl imports this module's users; import on first use
            route_cpu = sycl.routing_cpu()
        return SYCL if route_cpu else CPU
    return CPU


def of_packed(packed: Tensor) -> Backend:
    """The backend whose layout `packed` is in (by rank: 2-D native CPU, 4-D SYCL)."""
    return SYCL if SYCL.owns(packed) else CPU
