"""Pure-torch semantics of every lowbit op, computed in float64. The tests hold the kernels to these.

Each linear returns float64 when dtype=torch.float64 is passed (for error analysis) and x's dtype otherwise.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from lowbit.formats import unpack_int4


def dequantize_int8(q: Tensor, scales: Tensor) -> Tensor:
    return q.double() * scales.double()[:, None]


def dequantize_int4(packed: Tensor, scales: Tensor, zeros: Optional[Tensor], group_size: int) -> Tensor:
    """w = (q - zero) * scale with uint8 zeros (None: symmetric, zero 8), or w = scale * q + offset when `zeros`
    is a float tensor of offsets (the int4 form with float offsets, GGUF Q4_1's d * q + m)."""
    q = unpack_int4(packed).double()
    N, K = q.shape
    q = q.reshape(N, K // group_size, group_size)
    s = scales.double()[..., None]
    if zeros is not None and zeros.is_floating_point():
        w = s * q + zeros.double()[..., None]
    else:
        z = zeros.double() if zeros is not None else torch.full_like(scales, 8, dtype=torch.float64)
        w = (q - z[..., None]) * s
    return w.reshape(N, K)


# The smallest normal bf16 (and fp32) magnitude.
BF16_MIN_NORMAL = 2.0 ** -126


def activations(x: Tensor) -> Tensor:
    """x as the ops read it: bf16 activations with subnormal values read as (signed) zero, every other value
    exactly. The CPU's bf16 dot-product instruction (vdpbf16ps: AVX512-BF16, AMX) treats subnormal inputs so,
    and every lowbit backend and kernel variant follows it, so a result never depends on the CPU or on M."""
    if x.dtype != torch.bfloat16:
        return x
    return torch.where(x.abs() < BF16_MIN_NORMAL, x * 0, x)


def _linear(x: Tensor, w64: Tensor, bias: Optional[Tensor], dtype: Optional[torch.dtype]) -> Tensor:
    y = activations(x).double() @ w64.T
    if bias is not None:
        y = y + bias.double()
    return y.to(dtype or x.dtype)


def linear_a16w8(x, q, scales, bias=None, dtype=None):
    return _linear(x, dequantize_int8(q, scales), bias, dtype)


def linear_a16w4(x, packed, scales, zeros, group_size, bias=None, dtype=None):
    return _linear(x, dequantize_int4(packed, scales, zeros, group_size), bias, dtype)


# Rows of da8w8 whose amax is below this are scaled by 2^64 before quantizing (quantize_activation_per_token).
TINY_ROW_AMAX = 2.0 ** -120


def quantize_activation_per_token(x: Tensor) -> Tuple[Tensor, Tensor]:
    """The dynamic activation quantization inside da8w8, in the exact fp32 arithmetic of the kernels:
    amax = max |x| of the row; q = clamp(round_half_even(x * (127 / amax)), -127, 127); scale = amax / 127.
    A zero row gets scale 0; a row holding NaN or Inf gets scale NaN (so its outputs are NaN).

    A row with amax < 2^-120 (TINY_ROW_AMAX), where 127 / amax would overflow to inf (from about 3.7e-37), is
    multiplied by 2^64 first: q = round((x * 2^64) * (127 / (amax * 2^64))). The products are exact (powers of
    two), so this is the formula above with an unbounded exponent range; the scale stays amax / 127 (subnormal
    there, so the outputs of such rows carry a relative error of up to 2^-149 / scale)."""
    xf = x.float().reshape(-1, x.shape[-1])
    amax = xf.abs().amax(dim=1, keepdim=True)
    finite = torch.isfinite(xf).all(dim=1, keepdim=True)
    boost = torch.where(amax < TINY_ROW_AMAX, 2.0 ** 64, 1.0).float()
    safe = torch.where(amax > 0, amax * boost, torch.ones_like(amax))
    inv = torch.full_like(safe, 127.0) / safe  # a true division: `127.0 / t` would multiply by t.reciprocal()
    q = torch.round(xf * boost * inv).clamp(-127, 127)
    q = torch.where((amax > 0) & finite, q, torch.zeros_like(q)).to(torch.int8)
    scale = torch.where(finite, amax / 127.0, torch.full_like(amax, float("nan")))
    return q.reshape(x.shape), scale.reshape(x.shape[:-1])


def linear_da8w8(x, q, scales, bias=None, dtype=None):
    xq, xs = quantize_activation_per_token(activations(x))
    acc = xq.double() @ q.double().T  # exact: int8 products summed in int32 range
    y = acc * xs.double()[..., None] * scales.double()
    if bias is not None:
        y = y + bias.double()
    return y.to(dtype or x.dtype)


def linear_da8w4(x, packed, scales, zeros, group_size, bias=None, dtype=None):
    """da8w4: x quantized per token as in da8w8 (quantize_activation_per_token); int4 weights q with zero points z
    (8 when zeros is None); per group G of group_size consecutive k an exact integer sum
    d_G = sum_{k in G} (q_k - z_G) * xq_k (|d_G| <= 15 * 127 * group_size < 2^31), then
    y = x_scale * sum_G scale_G * d_G + bias."""
    xq, xs = quantize_activation_per_token(activations(x))
    q = unpack_int4(packed).double()
    N, K = q.shape
    groups = K // group_size
    z = zeros.double() if zeros is not None else torch.full_like(scales, 8, dtype=torch.float64)
    w = q.reshape(N, groups, group_size) - z[..., None]                 # exact small integers
    xg = xq.double().reshape(-1, groups, group_size)
    d = torch.einsum("mgk,ngk->mng", xg, w)                              # exact: integers below 2^53
    y = (d * scales.double()).sum(-1) * xs.double().reshape(-1)[:, None]
    y = y.reshape(*x.shape[:-1], N)
    if bias is not None:
        y = y + bias.double()
    return y.to(dtype or x.dtype)
