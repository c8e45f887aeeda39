"""The canonical weight formats and round-to-nearest quantizers that produce them.

Canonical = what state_dict and safetensors hold; independent of device and instruction set:
  int8:  q int8 [N, K],            scales float32 [N]            w = q * scale
  int4:  packed uint8 [N, K/2],    scales float32 [N, K/g],      w = (q - zero) * scale
         element k in the low nibble when k is even;  zeros uint8 [N, K/g] in 0..15, or None = symmetric (zero 8)
         or with float offsets (a16w4):  offsets float32 [N, K/g]    w = scale * q + offset
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from lowbit.int4_groups import normalize_groups, scale_back, times_power_of_two

INT4_MAX = 15
# How int4 scales and zeros are chosen: round to nearest, or HQQ's half-quadratic optimizer (hqq_method.py, needs
# the `hqq` package)
INT4_METHODS = ("rtn", "hqq")


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


_INT4_SOURCE_DTYPES = (torch.uint8, torch.int16, torch.int32, torch.int64)


def pack_int4(q: Tensor) -> Tensor:
    """uint8 (or int16/32/64) [N, K] in 0..15, K even -> uint8 [N, K/2], element k in the low nibble when k is even.

    int8 is refused: lowbit's int4 values are unsigned (0..15, zero point 8 when symmetric), while int8 usually
    holds signed ones (-8..7), which would need 8 added first. Values outside 0..15 are a ValueError (17 would
    lose its high bit, -1 would overwrite its neighbour), and so is an odd K."""
    if not isinstance(q, Tensor):
        raise TypeError(f"q must be a torch.Tensor, got {type(q).__name__}")
    if q.dtype not in _INT4_SOURCE_DTYPES:
        hint = (" (int8 suggests signed int4 in -8..7: lowbit's int4 is unsigned 0..15, so add 8 and pass uint8)"
                if q.dtype == torch.int8 else "")
        raise TypeError(f"q must be uint8 (or int16/int32/int64) with values in 0..15, got dtype {q.dtype}{hint}")
    if q.dim() != 2:
        raise ValueError(f"q must be a 2-D [N, K] tensor, got shape {tuple(q.shape)}")
    if q.shape[1] % 2:
        raise ValueError(f"q must have an even K (two int4 per byte), got K = {q.shape[1]}")
    if q.device.type != "meta" and q.numel() and (int(q.min()) < 0 or int(q.max()) > INT4_MAX):
        raise ValueError(f"q must be in 0..{INT4_MAX}, got values in {int(q.min())}..{int(q.max())}")
    q = q.to(torch.uint8)
    return (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous()


def unpack_int4(packed: Tensor) -> Tensor:
    """uint8 [N, K/2] -> uint8 [N, K] in 0..15."""
    if not isinstance(packed, Tensor) or packed.dtype != torch.uint8:
        what = f"dtype {packed.dtype}" if isinstance(packed, Tensor) else type(packed).__name__
        raise TypeError(f"packed must be a uint8 tensor (two int4 per byte), got {what}")
    if packed.dim() != 2:
        raise ValueError(f"packed must be a 2-D [N, K/2] tensor, got shape {tuple(packed.shape)}")
    return torch.stack([packed & 15, packed >> 4], dim=-1).reshape(packed.shape[0], -1)


def quantize_int4(weight: Tensor, group_size: Optional[int] = 128, symmetric: bool = False,
                  method: str = "rtn", offsets: bool = False) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Group-wise int4.

    method="rtn", round to nearest:
      asymmetric: scale = (max - min) / 15 per group, zero = round(-min / scale) in 0..15
      symmetric:  scale = amax / 7, zero = 8 (q - 8 in -7..7)
      offsets:    scale = (max - min) / 15, offset = min, q = round((w - min) / scale): w = scale * q + offset
                  (GGUF Q4_1's form; no rounding of the zero point, and 0 need not be in the range)
    method="hqq": HQQ's half-quadratic optimizer (lowbit.hqq_method; the `hqq` package) for the offsets, then
      least-squares refits of scale and offset; with zero points, its offsets rounded to integer zero points.
    Returns (packed uint8 [N, K/2], scales float32 [N, K/g], zeros uint8 [N, K/g] or None), or with offsets=True
    (packed, scales, offsets float32 [N, K/g]).
    """
    _check_weight(weight)
    check_int4_method(method)
    if offsets and symmetric:
        raise ValueError("offsets=True and symmetric=True exclude each other (float offsets are asymmetric)")
    N, K = weight.shape
    g = resolve_group_size(K, group_size)
    check_int4_shape(K, g)
    if method == "hqq":
        from lowbit.hqq_method import hqq_int4
        q, scales, zeros = hqq_int4(weight, g, symmetric, offsets)
        return pack_int4(q), scales.contiguous(), zeros
    # each group scaled by a power of two (exact): max - min of finite weights cannot overflow, and ordinary
    # weights get the same bits as without it (int4_groups.normalize_groups)
    w, e = normalize_groups(weight.float().reshape(N, K // g, g))
    if offsets:
        lo, hi = w.amin(dim=-1, keepdim=True), w.amax(dim=-1, keepdim=True)
        scales = _safe_scale((hi - lo) / INT4_MAX)
        q = torch.round((w - lo) / scales).clamp_(0, INT4_MAX)
        q, scales = scale_back(q, scales, e, torch.zeros_like(q))
        offs = times_power_of_two(lo, e)
        return (pack_int4(q.reshape(N, K).to(torch.uint8)), scales.squeeze(-1).contiguous(),
                offs.squeeze(-1).contiguous())
    if symmetric:
        scales = _safe_scale(w.abs().amax(dim=-1, keepdim=True) / 7.0)
        zeros = torch.full_like(scales, 8.0)
        q = torch.round(w / scales).clamp_(-8, 7) + 8
    else:
        lo = w.amin(dim=-1, keepdim=True).clamp(max=0.0)  # keep 0 representable, as zero points of real weights do
        hi = w.amax(dim=-1, keepdim=True).clamp(min=0.0)
        scales = _safe_scale((hi - lo) / INT4_MAX)
        zeros = torch.round(-lo / scales).clamp_(0, INT4_MAX)
        q = (torch.round(w / scales) + zeros).clamp_(0, INT4_MAX)
    q, scales = scale_back(q, scales, e, zeros)
    zeros = None if symmetric else zeros.squeeze(-1).to(torch.uint8).contiguous()
    return pack_int4(q.reshape(N, K).to(torch.uint8)), scales.squeeze(-1).contiguous(), zeros
