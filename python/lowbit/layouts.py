"""The packed kernel layouts: their sizes, and the canonical weights read back out of them in pure torch (views,
permutes, one copy).

QuantLinear keeps only the packed layout resident, so its state_dict, its `weight` / `weight_scale` /
`weight_zero` attributes and a move to another backend read the canonical format (lowbit.formats) back from it.
The byte layouts are defined by the packers; the tests check unpack(pack(w)) == w for every mode, shape and both
backends (tests/test_layouts.py), so a packer change that is not mirrored here fails there.
  native CPU: csrc/cpu/kernels/api.h (panels of 16 columns, byte rows)
  SYCL:       sycl/kernels/pack.sycl (panels of 64 columns of 32-bit words)
Both are little-endian byte images on every device lowbit runs on, so an fp32 field is a `.view(torch.float32)`.
"""

from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor

# The one Python copy of the layouts' constants (C++: csrc/cpu/kernels/api.h and sycl/kernels/common.h).
CPU_PANEL = 16   # output columns per native CPU panel
SYCL_PANEL = 64  # output columns per SYCL panel


class Canonical(NamedTuple):
    weight: Tensor            # int8 [N, K], or uint8 [N, K/2] for int4
    scale: Tensor             # float32 [N], or [N, K/g] for int4
    zero: Optional[Tensor]    # uint8 [N, K/g] (asymmetric int4), else None
    offset: Optional[Tensor] = None  # float32 [N, K/g] (int4 with float offsets: w = scale * q + offset), else None


class Layout(NamedTuple):
    """One mode's packed layout on one backend (lowbit.backends): its size and its reader.

    panel_size(K, group_size): bytes per 16-column panel (native CPU) or rows of 64 32-bit words per 64-column
      panel (SYCL), the second dimension of the packed tensor.
    unpack(packed, N, K, group_size, symmetric) -> Canonical: the canonical tensors `packed` was made from.
    offsets_size(K, group_size): panel_size of the int4 form with float offsets, or None when the layout has no
      such form. The two sizes differ for every (K, group_size), so unpack tells the forms apart by the size.
    """
    panel_size: Callable[[int, Optional[int]], int]
    unpack: Callable[[Tensor, int, int, Optional[int], bool], Canonical]
    offsets_size: Optional[Callable[[int, Optional[int]], int]] = None


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
    # panel: per group [16 f32 scales][16 uint8 zero points][g/2 rows x 16 canonical bytes], or with float
    # offsets [16 f32 scales][16 f32 offsets][g/2 rows x 16 canonical bytes] (told apart by the size)
    p, groups = packed.shape[0], k // g
    offsets = packed.shape[1] == _cpu_int4_offsets_bytes(k, g)
    header = CPU_PANEL * (8 if offsets else 5)
    per_group = packed.reshape(p, groups, -1)
    scale = _f32(per_group[..., :CPU_PANEL * 4])              # [p, groups, 16]
    w = per_group[..., header:].reshape(p, groups, g // 2, CPU_PANEL)
    w = w.permute(0, 3, 1, 2).reshape(p * CPU_PANEL, k // 2)

    def per_column(t: Tensor) -> Tensor:  # [p, groups, 16] -> [N, groups]
        return t.permute(0, 2, 1).reshape(p * CPU_PANEL, groups)[:n].contiguous()

    if offsets:
        return Canonical(w[:n].contiguous(), per_column(scale), None,
                         per_column(_f32(per_group[..., CPU_PANEL * 4:CPU_PANEL * 8])))
    zero = per_group[..., CPU_PANEL * 4:CPU_PANEL * 5]
    return Canonical(w[:n].contiguous(), per_column(scale),
                     None if symmetric else per_column(zero))


def _cpu_da8w4(packed: Tensor, n: int, k: int, g: int, symmetric: bool) -> Canonical:
    # panel: per group [16 f32 scales][16 uint8 zero points][g/8 rows x 16 columns x 4 bytes], byte (r, c, j) =
    # q[8r + j] | q[8r + 4 + j] << 4 of column c: the low nibbles of a row are the vpdpbusd operand of k = 8r..8r+3
    p, groups = packed.shape[0], k // g
    per_group = packed.reshape(p, groups, -1)
    scale = _f32(per_group[..., :CPU_PANEL * 4])
    zero = per_group[..., CPU_PANEL * 4:CPU_PANEL * 5]
    b = per_group[..., CPU_PANEL * 5:].reshape(p, groups, g // 8, CPU_PANEL, 4)
    q = torch.stack([b & 15, b >> 4], dim=-2)                    # [p, groups, g/8, 16, 2 (k + 0 / k + 4), 4]
    q = q.permute(0, 3, 1, 2, 4, 5).reshape(p * CPU_PANEL, k)    # column-major k order restored
    w = q[:, 0::2] | (q[:, 1::2] << 4)                           # canonical: even k in the low nibble

    def per_column(t: Tensor) -> Tensor:
        return t.permute(0, 2, 1).reshape(p * CPU_PANEL, groups)[:n].contiguous()

    return Canonical(w[:n].contiguous(), per_column(scale), None if symmetric else per_column(zero))


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


def _sycl_int4_rows(k: int, g: int) -> int:
    return (k + 7) // 8 + 2 * (k // g)  # weight words, K/g rows of scales, K/g of zeros


def _sycl_int4_offsets_rows(k: int, g: int) -> int:
    return _sycl_int4_rows(k, g) + 1  # ... K/g rows of float offsets, and a row of zeros marking the form


def _sycl_int4(packed: Tensor, n: int, k: int, g: int, symmetric: bool) -> Canonical:
    # rows 0 .. ceil(K/8)-1: four canonical bytes of one column per word; then K/g rows of fp32 scales, then
    # K/g rows of fp32 zero points
    words, groups = (k + 7) // 8, k // g
    w = _sycl_words(packed, slice(0, words), n, k // 2)

    def per_column(first_row: int) -> Tensor:  # K/g rows of fp32 -> [N, groups]
        rows = _f32(packed[:, first_row:first_row + groups]).squeeze(-1)   # [p, groups, 64]
        return rows.permute(0, 2, 1).reshape(-1, groups)[:n].contiguous()

    if packed.shape[1] == _sycl_int4_offsets_rows(k, g):
        return Canonical(w, per_column(words), None, per_column(words + groups))
    return Canonical(w, per_column(words), None if symmetric else _zero_points(per_column(words + groups)))


# SYCL da8w4 (pack.sycl, pack_da8w4): rows = K/8 + K/g + ceil((K/g) / 8):
#   rows 0 .. K/8-1             four canonical bytes q[n, 4r .. 4r+3] of [N, K/2] per word (nibble j = element 8r+j)
#   the next K/g rows            fp32 scales, one group a row
#   the last ceil(K/g / 8) rows  zero points as nibbles, 8 groups a word: nibble j of zero row r = group 8r+j
#                                (8 for every group when the weight is symmetric)

def _sycl_rows_by_column(packed: Tensor, first: int, count: int, n: int) -> Tensor:
    """The bytes of word rows first .. first+count-1, column by column: uint8 [N, 4 * count]."""
    p = packed.shape[0]
    rows = packed[:, first:first + count].permute(0, 2, 1, 3).reshape(p * SYCL_PANEL, 4 * count)
    return rows[:n].contiguous()


def _sycl_da8w4(packed: Tensor, n: int, k: int, g: int, symmetric: bool) -> Canonical:
    """Canonical (uint8 [N, K/2], float32 [N, K/g], uint8 [N, K/g] or None) of a pack_da8w4 packing for the SYCL
    kernels. n = out_features, k = in_features, g = group_size (a multiple of 8 dividing k)."""
    words, groups = k // 8, k // g
    weight = _sycl_rows_by_column(packed, 0, words, n)
    scale = _sycl_rows_by_column(packed, words, groups, n).view(torch.float32)
    zero = None
    if not symmetric:
        zero_bytes = _sycl_rows_by_column(packed, words + groups, (groups + 7) // 8, n)  # [N, 4 * zero rows]
        # byte b of a word holds groups 2b (low nibble) and 2b + 1 (high nibble)
        zero = torch.stack((zero_bytes & 15, zero_bytes >> 4), dim=-1).reshape(n, -1)[:, :groups].contiguous()
    return Canonical(weight, scale, zero)


# ---- the layouts, by backend and mode (lowbit.modes names them in each mode's description)

def _cpu_int4_bytes(k: int, g: int) -> int:
    return k // g * (CPU_PANEL * 5 + g // 2 * CPU_PANEL)  # per group: 16 f32 scales, 16 u8 zeros, g/2 x 16 bytes


def _cpu_int4_offsets_bytes(k: int, g: int) -> int:
    return k // g * (CPU_PANEL * 8 + g // 2 * CPU_PANEL)  # per group: 16 f32 scales, 16 f32 offsets, g/2 x 16 bytes


CPU_A16W8 = Layout(lambda k, g=None: CPU_PANEL * 4 + k * CPU_PANEL,
                   lambda packed, n, k, g=None, symmetric=True: _cpu_a16w8(packed, n, k))
CPU_DA8W8 = Layout(lambda k, g=None: CPU_PANEL * 8 + (k + 3) // 4 * 4 * CPU_PANEL,
                   lambda packed, n, k, g=None, symmetric=True: _cpu_da8w8(packed, n, k))
CPU_A16W4 = Layout(_cpu_int4_bytes, _cpu_a16w4, _cpu_int4_offsets_bytes)
CPU_DA8W4 = Layout(_cpu_int4_bytes, _cpu_da8w4)

SYCL_INT8 = Layout(lambda k, g=None: (k + 3) // 4 + 1,  # weight words, then one row of scales
                   lambda packed, n, k, g=None, symmetric=True: _sycl_int8(packed, n, k))
SYCL_A16W4 = Layout(_sycl_int4_rows, _sycl_int4, _sycl_int4_offsets_rows)
SYCL_DA8W4 = Layout(lambda k, g: k // 8 + k // g + (k // g + 7) // 8, _sycl_da8w4)
