"""The SYCL da8w4 packing (sycl/kernels/pack.sycl, pack_da8w4) read back to the canonical int4 format, in pure torch.

To be merged into lowbit.layouts (unpack(..., sycl_layout=True) for mode "da8w4"). The packing is uint8
[panels, rows, 64, 4]: panels of 64 output columns, each rows x 64 little-endian 32-bit words, word (r, c) of panel
p belonging to column 64p + c, columns past N zero. rows = K/8 + K/g + ceil((K/g) / 8):
  rows 0 .. K/8-1             four canonical bytes q[n, 4r .. 4r+3] of [N, K/2] per word (nibble j = element 8r+j)
  the next K/g rows            fp32 scales, one group a row
  the last ceil(K/g / 8) rows  zero points as nibbles, 8 groups a word: nibble j of zero row r = group 8r+j
                               (8 for every group when the weight is symmetric)
"""

import torch
from torch import Tensor

from lowbit.layouts import Canonical

SYCL_PANEL = 64  # sycl/kernels/common.h kPanel


def _by_column(packed: Tensor, first: int, count: int, n: int) -> Tensor:
    """The bytes of word rows first .. first+count-1, column by column: uint8 [N, 4 * count]."""
    p = packed.shape[0]
    rows = packed[:, first:first + count].permute(0, 2, 1, 3).reshape(p * SYCL_PANEL, 4 * count)
    return rows[:n].contiguous()


def _sycl_da8w4(packed: Tensor, n: int, k: int, g: int, symmetric: bool) -> Canonical:
    """Canonical (uint8 [N, K/2], float32 [N, K/g], uint8 [N, K/g] or None) of a pack_da8w4 packing for the SYCL
    kernels. n = out_features, k = in_features, g = group_size (a multiple of 8 dividing k)."""
    words, groups = k // 8, k // g
    weight = _by_column(packed, 0, words, n)
    scale = _by_column(packed, words, groups, n).view(torch.float32)
    zero = None
    if not symmetric:
        zero_bytes = _by_column(packed, words + groups, (groups + 7) // 8, n)  # [N, 4 * zero rows]
        # byte b of a word holds groups 2b (low nibble) and 2b + 1 (high nibble)
        zero = torch.stack((zero_bytes & 15, zero_bytes >> 4), dim=-1).reshape(n, -1)[:, :groups].contiguous()
    return Canonical(weight, scale, zero)
