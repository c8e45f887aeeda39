"""Canonical weights read back out of the packed kernel layouts, in pure torch (views, permutes, one copy).

QuantLinear keeps only the packed layout resident, so its state_dict, its `weight` / `weight_scale` /
`weight_zero` attributes and a move to another backend read the canonical format (lowbit.formats) back from it.
The byte layouts are defined by the packers; the tests check unpack(pack(w)) == w for every mode, shape and both
backends (tests/test_layouts.py), so a packer change that is not mirrored here fails there.
  native CPU: csrc/cpu/kernels/api.h (panels of 16 columns, byte rows)
  SYCL:       sycl/kernels/pack.sycl (panels of 64 columns of 32-bit words)
Both are little-endian byte images on every device lowbit runs on, so an fp32 field is a `.view(torch.float32)`.
"""

from typing import NamedTuple, Optional

import torch
from torch import Tensor

CPU_PANEL = 16   # csrc/cpu/kernels/api.h kPanel
SYCL_PANEL = 64  # sycl/kernels/common.h kPanel


class Canonical(NamedTuple):
    weight: Tensor            # int8 [N, K], or uint8 [N, K/2] for int4
    scale: Tensor             # float32 [N], or [N, K/g] for int4
    zero: Optional[Tensor]    # uint8 [N, K/g] (asymmetric int4), else None


def unpack(mode: str, packed: Tensor, out_features: int, in_features: int, group_size: Optional[int] = None,
           symmetric: bool = True, sycl_layout: bool = False) -> Canonical:
    """The canonical (weight, scale, zero) that `packed` was made from by lowbit.ops.pack_<mode>.

    sycl_layout: the packing came from the SYCL kernels' packer (lowbit.sycl.handles was true for its device).
    """
    n, k = out_features, in_features
    if sycl_layout:
        if mode == "a16w4":
            return _sycl_int4(packed, n, k, group_size, symmetric)
        return _sycl_int8(packed, n, k)
    if mode == "a16w8":
        return _cpu_a16w8(packed, n, k)
    if mode == "da8w8":
        return _cpu_da8w8(packed, n, k)
    return _cpu_a16w4(packed, n, k, group_size, symmetric)


def _f32(fields: Tensor) -> Tensor:
    """uint8 [..., 4 * j] byte image -> float32 [..., j]."""
    return fields.contiguous().view(torch.float32)


def _zero_points(zero_f32: Tensor) -> Tensor:
    # the packers store the uint8 zero point as the float it is (0.0 .. 15.0), so the cast is exact
    return zero_f32.to(torch.uint8)


# ---- native CPU: panel p holds columns 16p .. 16p+15; columns past N are zero padding

def _cpu_a16w8(packed: Tensor, n: int, k: int) -> Canonical:
    # panel: [16 f32 scales][K rows x 16 int8]
    p = packed.shape[0]
    scale = _f32(packed[:, :CPU_PANEL * 4]).reshape(p * CPU_PANEL)
    w = packed[:, CPU_PANEL * 4:].view(torch.int8).reshape(p, k, CPU_PANEL)
    return Canonical(w.permute(0, 2, 1).reshape(p * CPU_PANEL, k)[:n].contiguous(), scale[:n].contiguous(), None)


def _cpu_da8w8(packed: Tensor, n: int, k: int) -> Canonical:
    # panel: [16 f32 scales][16 int32 column sums][K/4 (rounded up) x 16 columns x 4 int8]
    p, k4 = packed.shape[0], (k + 3) // 4 * 4
    scale = _f32(packed[:, :CPU_PANEL * 4]).reshape(p * CPU_PANEL)
    w = packed[:, CPU_PANEL * 8:].view(torch.int8).reshape(p, k4 // 4, CPU_PANEL, 4)
    w = w.permute(0, 2, 1, 3).reshape(p * CPU_PANEL, k4)
    return Canonical(w[:n, :k].contiguous(), scale[:n].contiguous(), None)


def _cpu_a16w4(packed: Tensor, n: int, k: int, g: int, symmetric: bool) -> Canonical:
    # panel: per group [16 f32 scales][16 uint8 zero points][g/2 rows x 16 canonical bytes]
    p, groups = packed.shape[0], k // g
    per_group = packed.reshape(p, groups, -1)
    scale = _f32(per_group[..., :CPU_PANEL * 4])              # [p, groups, 16]
    zero = per_group[..., CPU_PANEL * 4:CPU_PANEL * 5]
    w = per_group[..., CPU_PANEL * 5:].reshape(p, groups, g // 2, CPU_PANEL)
    w = w.permute(0, 3, 1, 2).reshape(p * CPU_PANEL, k // 2)

    def per_column(t: Tensor) -> Tensor:  # [p, groups, 16] -> [N, groups]
        return t.permute(0, 2, 1).reshape(p * CPU_PANEL, groups)[:n].contiguous()

    return Canonical(w[:n].contiguous(), per_column(scale),
                     None if symmetric else per_column(zero))


# ---- SYCL: uint8 [panels, rows, 64, 4], word (r, c) of panel p belongs to column 64p + c

def _sycl_words(packed: Tensor, rows: slice, n: int, width: int) -> Tensor:
    """The bytes of word rows `rows`, column by column: uint8 [N, width]."""
    p = packed.shape[0]
    w = packed[:, rows].permute(0, 2, 1, 3).reshape(p * SYCL_PANEL, -1)
    return w[:n, :width].contiguous()


def _sycl_int8(packed: Tensor, n: int, k: int) -> Canonical:
    # rows 0 .. ceil(K/4)-1: four int8 of one column per word; then one row of fp32 scales
    words = (k + 3) // 4
    w = _sycl_words(packed, slice(0, words), n, k).view(torch.int8)
    scale = _f32(packed[:, words]).reshape(-1)[:n].contiguous()
    return Canonical(w, scale, None)


def _sycl_int4(packed: Tensor, n: int, k: int, g: int, symmetric: bool) -> Canonical:
    # rows 0 .. ceil(K/8)-1: four canonical bytes of one column per word; then K/g rows of fp32 scales, then
    # K/g rows of fp32 zero points
    words, groups = (k + 7) // 8, k // g
    w = _sycl_words(packed, slice(0, words), n, k // 2)

    def per_column(first_row: int) -> Tensor:  # K/g rows of fp32 -> [N, groups]
        rows = _f32(packed[:, first_row:first_row + groups]).squeeze(-1)   # [p, groups, 64]
        return rows.permute(0, 2, 1).reshape(-1, groups)[:n].contiguous()

    return Canonical(w, per_column(words), None if symmetric else _zero_points(per_column(words + groups)))
