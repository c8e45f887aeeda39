"""The canonical weight formats and round-to-nearest quantizers that produce them.

Canonical = what state_dict and safetensors hold; independent of device and instruction set:
  int8:  q int8 [N, K],            scales float32 [N]            w = q * scale
  int4:  packed uint8 [N, K/2],    scales float32 [N, K/g],      w = (q - zero) * scale
         element k in the low nibble when k is even;  zeros uint8 [N, K/g] in 0..15, or None = symmetric (zero 8)
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from lowbit.scale_search import search_int4

INT4_MAX = 15
# How int4 scales and zeros are chosen: round to nearest, or an error-minimizing search (scale_search.py)
INT4_METHODS = ("rtn", "search")


def _check_weight(weight: Tensor) -> None:
    if not isinstance(weight, Tensor) or not weight.is_floating_point():
        raise TypeError(f"weight must be a floating-point tensor, got {type(weight).__name__}"
                        + (f" of dtype {weight.dtype}" if isinstance(weight, Tensor) else ""))
    if weight.dim() != 2 or weight.numel() == 0:
        raise ValueError(f"weight must be a non-empty 2-D [N, K] tensor, got shape {tuple(weight.shape)}")
    if not torch.isfinite(weight).all():
        # a NaN would make its group's scale NaN and be quantized to a finite, wrong value: refuse instead
        bad = (~torch.isfinite(weight)).nonzero()[0].tolist()
        raise ValueError(f"weight has a non-finite value (first at [row, col] = {bad}); cannot quantize it")


def _safe_scale(scale: Tensor) -> Tensor:
    # an all-zero row or group quantizes to q = 0 (or q = zero) with scale 1 rather than dividing by zero
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def quantize_int8(weight: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-output-channel symmetric int8: scale = amax / 127, q = round(w / scale) in -127..127."""
    _check_weight(weight)
    w = weight.float()
    scales = _safe_scale(w.abs().amax(dim=1) / 127.0)
    q = torch.round(w / scales[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.contiguous(), scales.contiguous()


def resolve_group_size(in_features: int, group_size: Optional[int]) -> int:
    """None or -1 means one group per output channel (group_size = K)."""
    return in_features if group_size in (None, -1) else int(group_size)


def check_int4_shape(in_features: int, group_size: int) -> None:
    if in_features % 2:
        raise ValueError(f"int4 weights need an even in_features (two per byte), got K = {in_features}")
    if group_size <= 0 or group_size % 2:
        raise ValueError(f"group_size must be a positive even number or None (per channel), got {group_size}")
    if in_features % group_size:
        raise ValueError(f"in_features K = {in_features} is not divisible by group_size = {group_size}")


def check_int4_method(method: str) -> None:
    if method not in INT4_METHODS:
        raise ValueError(f"method must be one of {INT4_METHODS}, got {method!r}")


def pack_int4(q: Tensor) -> Tensor:
    """uint8/int [N, K] in 0..15 -> uint8 [N, K/2], element k in the low nibble when k is even."""
    q = q.to(torch.uint8)
    return (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous()


def unpack_int4(packed: Tensor) -> Tensor:
    """uint8 [N, K/2] -> uint8 [N, K] in 0..15."""
    return torch.stack([packed & 15, packed >> 4], dim=-1).reshape(packed.shape[0], -1)


def quantize_int4(weight: Tensor, group_size: Optional[int] = 128, symmetric: bool = False,
                  method: str = "rtn") -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Group-wise int4.

    method="rtn", round to nearest:
      asymmetric: scale = (max - min) / 15 per group, zero = round(-min / scale) in 0..15
      symmetric:  scale = amax / 7, zero = 8 (q - 8 in -7..7)
    method="search": per group, the clipped range and least-squares scale with the smallest squared weight
      error (lowbit.scale_search); same format, slower to quantize.
    Returns (packed uint8 [N, K/2], scales float32 [N, K/g], zeros uint8 [N, K/g] or None).
    """
    _check_weight(weight)
    check_int4_method(method)
    N, K = weight.shape
    g = resolve_group_size(K, group_size)
    check_int4_shape(K, g)
    if method == "search":
        q, scales, zeros = search_int4(weight, g, symmetric)
        return pack_int4(q), scales.contiguous(), zeros
    w = weight.float().reshape(N, K // g, g)
    if symmetric:
        scales = _safe_scale(w.abs().amax(dim=-1) / 7.0)
        zeros = None
        q = torch.round(w / scales[..., None]).clamp_(-8, 7) + 8
    else:
        lo = w.amin(dim=-1).clamp(max=0.0)  # keep 0 representable, as zero points of real weights do
        hi = w.amax(dim=-1).clamp(min=0.0)
        scales = _safe_scale((hi - lo) / INT4_MAX)
        zeros = torch.round(-lo / scales).clamp_(0, INT4_MAX)
        q = (torch.round(w / scales[..., None]) + zeros[..., None]).clamp_(0, INT4_MAX)
        zeros = zeros.to(torch.uint8).contiguous()
    return pack_int4(q.reshape(N, K)), scales.contiguous(), zeros
