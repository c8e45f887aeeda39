"""Typed wrappers of torch.ops.lowbit.* and their fake kernels (for torch.compile and torch.export).

The schemas live in C++ (csrc/ops.cpp). These wrappers validate in Python first so that a bad argument
raises TypeError / ValueError naming it; the C++ kernels check again (RuntimeError) for direct op calls.
"""

from typing import Optional

import torch
from torch import Tensor

from lowbit import _opmeta, sycl

PANEL = 16  # output columns per packed panel (csrc/cpu/kernels/api.h)
ACTIVATION_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
_SUPPORTED_DEVICES = ("cpu", "xpu")  # xpu: the SYCL kernels (lowbit.sycl), when a SYCL runtime is installed


# ------------------------------------------------------------------ packed sizes (mirror api.h)

def _panels(n: int) -> int:
    return _opmeta.cpu_panels(n)


def _a16w8_panel_bytes(k: int) -> int:
    return _opmeta.cpu_panel_bytes("a16w8", k)


def _a16w4_panel_bytes(k: int, group_size: int) -> int:
    return _opmeta.cpu_panel_bytes("a16w4", k, group_size)


def _da8w8_panel_bytes(k: int) -> int:
    return _opmeta.cpu_panel_bytes("da8w8", k)


# ------------------------------------------------------------------ validation

def _tensor(t, name: str, dtypes=None, what: str = "") -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if dtypes is not None and t.dtype not in dtypes:
        raise TypeError(f"{name} must be {what}, got dtype {t.dtype}")
    return t


def _same_device(named: dict) -> None:
    # on every forward call: a plain loop, and nothing more for the common case (one CPU device)
    device = None
    for t in named.values():
        if t is None:
            continue
        if device is None:
            device = t.device
        elif t.device != device:
            listing = ", ".join(f"{k} on {v.device}" for k, v in named.items() if v is not None)
            raise ValueError(f"all tensors must be on one device, got {listing}")
    if device.type == "cpu":
        return
    if device.type not in _SUPPORTED_DEVICES and device.type != "meta":
        raise NotImplementedError(f"lowbit has no kernels for device '{device.type}' (supported: "
                                  f"{', '.join(_SUPPORTED_DEVICES)})")
    if device.type == "xpu" and not sycl.available():
        raise NotImplementedError(f"lowbit's XPU kernels are unavailable: {sycl.unavailable_reason()}")


def check_input(x, packed_weight) -> None:
    """x's dtype, rank and device against a packed weight (QuantLinear calls this only when its fast check fails)."""
    _tensor(x, "x", ACTIVATION_DTYPES, "bfloat16, float16 or float32")
    if x.dim() < 1:
        raise ValueError("x must have at least one dimension [..., K]")
    _same_device({"x": x, "packed_weight": packed_weight})


def _check_linear(x, packed_weight, out_features, bias, panel_bytes_of_k, mode, group_size=None):
    _tensor(x, "x", ACTIVATION_DTYPES, "bfloat16, float16 or float32")
    _tensor(packed_weight, "packed_weight", (torch.uint8,), "uint8 (from lowbit.ops.pack_*)")
    if bias is not None:
        _tensor(bias, "bias", (x.dtype,), f"of x's dtype {x.dtype}")
    if not isinstance(out_features, int) or isinstance(out_features, bool) or out_features <= 0:
        raise ValueError(f"out_features must be a positive int, got {out_features!r}")
    if x.dim() < 1:
        raise ValueError("x must have at least one dimension [..., K]")
    _same_device({"x": x, "packed_weight": packed_weight, "bias": bias})
    if not x.is_contiguous():
        raise ValueError("x must be contiguous (call x.contiguous(); QuantLinear does this for you)")
    if bias is not None and tuple(bias.shape) != (out_features,):
        raise ValueError(f"bias must have shape [out_features] = [{out_features}], got {tuple(bias.shape)}")
    k = x.shape[-1]
    if k == 0:  # no packing has K = 0 (a hand-made one of that shape would leave the output unwritten)
        raise ValueError(f"x.size(-1) = K must be positive, got x of shape {tuple(x.shape)}")
    sycl_layout = sycl.handles(x.device)
    expected = (sycl.packed_shape(mode, out_features, k, group_size) if sycl_layout
                else (_panels(out_features), panel_bytes_of_k(k)))
    if tuple(packed_weight.shape) != expected:
        if packed_weight.dim() == len(expected) and packed_weight.shape[0] == expected[0] \
                and tuple(packed_weight.shape[2:]) == expected[2:]:
            reason = _opmeta.mismatch_reason(mode, packed_weight.shape[1], k, group_size, sycl_layout)
            if reason:
                raise ValueError(reason)
        raise ValueError(
            f"packed_weight has shape {tuple(packed_weight.shape)}, but out_features = {out_features} and "
            f"x.size(-1) = K = {k} need {expected}: it was packed for another shape (mismatched K or N?) or "
            "for other kernels (native CPU vs SYCL: see lowbit.sycl.route_cpu)")


def _check_group_size(k: int, group_size, name: str = "K") -> None:
    if not isinstance(group_size, int) or group_size <= 0 or group_size % 2:
        raise ValueError(f"group_size must be a positive even int, got {group_size!r}")
    if k % group_size:
        raise ValueError(f"{name} = {k} is not divisible by group_size = {group_size}")


def _check_int8_weight(weight, scales):
    _tensor(weight, "weight", (torch.int8,), "int8 [N, K]")
    _tensor(scales, "scales", (torch.float32,), "float32 [N]")
    _same_device({"weight": weight, "scales": scales})
    if weight.dim() != 2 or weight.numel() == 0:
        raise ValueError(f"weight must be a non-empty 2-D [N, K] tensor, got shape {tuple(weight.shape)}")
    if tuple(scales.shape) != (weight.shape[0],):
        raise ValueError(f"scales must have shape [N] = [{weight.shape[0]}], got {tuple(scales.shape)}")


# ------------------------------------------------------------------ packing

def kernels_for(device: torch.device, sycl_layout: Optional[bool] = None):
    """The op namespace for tensors on `device`: lowbit.sycl.ops_for(device), or, when sycl_layout is given, the
    one whose kernels use that layout (QuantLinear decides the route once per call, and packs and runs with it)."""
    if sycl_layout is None:
        return sycl.ops_for(device)
    return torch.ops.lowbit_sycl if device.type == "cpu" and sycl_layout else torch.ops.lowbit


def pack_a16w8(weight: Tensor, scales: Tensor, *, _sycl_layout: Optional[bool] = None) -> Tensor:
    """Canonical int8 [N, K] + float32 scales [N] -> packed panels for linear_a16w8."""
    _check_int8_weight(weight, scales)
    return kernels_for(weight.device, _sycl_layout).pack_a16w8(weight.contiguous(), scales.contiguous())


def pack_da8w8(weight: Tensor, scales: Tensor, *, _sycl_layout: Optional[bool] = None) -> Tensor:
    """Canonical int8 [N, K] + float32 scales [N] -> packed panels (with column sums) for linear_da8w8."""
    _check_int8_weight(weight, scales)
    return kernels_for(weight.device, _sycl_layout).pack_da8w8(weight.contiguous(), scales.contiguous())


def pack_a16w4(weight: Tensor, scales: Tensor, zeros: Optional[Tensor], group_size: int, *,
               _sycl_layout: Optional[bool] = None) -> Tensor:
    """Canonical int4 (uint8 [N, K/2], low nibble = even k) + float32 scales [N, K/g] + uint8 zeros
    [N, K/g] in 0..15 (or None: symmetric, zero point 8) -> packed panels for linear_a16w4."""
    _tensor(weight, "weight", (torch.uint8,), "uint8 [N, K/2] (two int4 per byte)")
    _tensor(scales, "scales", (torch.float32,), "float32 [N, K/group_size]")
    if zeros is not None:
        _tensor(zeros, "zeros", (torch.uint8,), "uint8 [N, K/group_size] in 0..15")
    _same_device({"weight": weight, "scales": scales, "zeros": zeros})
    if weight.dim() != 2 or weight.numel() == 0:
        raise ValueError(f"weight must be a non-empty 2-D [N, K/2] tensor, got shape {tuple(weight.shape)}")
    n, k = weight.shape[0], weight.shape[1] * 2
    _check_group_size(k, group_size)
    groups = (n, k // group_size)
    if tuple(scales.shape) != groups:
        raise ValueError(f"scales must have shape [N, K/group_size] = {list(groups)}, got {list(scales.shape)}")
    if zeros is not None:
        if tuple(zeros.shape) != groups:
            raise ValueError(f"zeros must have shape [N, K/group_size] = {list(groups)}, got {list(zeros.shape)}")
        if zeros.device.type != "meta" and zeros.numel() and int(zeros.max()) > 15:
            raise ValueError(f"zeros must be in 0..15, got a maximum of {int(zeros.max())}")
        zeros = zeros.contiguous()
    return kernels_for(weight.device, _sycl_layout).pack_a16w4(weight.contiguous(), scales.contiguous(), zeros,
                                                               group_size)


# ------------------------------------------------------------------ linear

def linear_a16w8(x: Tensor, packed_weight: Tensor, out_features: int, bias: Optional[Tensor] = None) -> Tensor:
    """y[..., N] = x[..., K] @ (q * scale).T + bias, fp32 accumulation, output in x's dtype."""
    _check_linear(x, packed_weight, out_features, bias, _a16w8_panel_bytes, "a16w8")
    return sycl.ops_for(x.device).linear_a16w8(x, packed_weight, out_features, bias)


def linear_a16w4(x: Tensor, packed_weight: Tensor, out_features: int, group_size: int,
                 bias: Optional[Tensor] = None) -> Tensor:
    """y[..., N] = x[..., K] @ ((q - zero) * scale).T + bias, fp32 accumulation, output in x's dtype."""
    _tensor(x, "x", ACTIVATION_DTYPES, "bfloat16, float16 or float32")
    _check_group_size(x.shape[-1] if x.dim() else 0, group_size, "x.size(-1) = K")
    _check_linear(x, packed_weight, out_features, bias, lambda k: _a16w4_panel_bytes(k, group_size), "a16w4",
                  group_size)
    return sycl.ops_for(x.device).linear_a16w4(x, packed_weight, out_features, group_size, bias)


def linear_da8w8(x: Tensor, packed_weight: Tensor, out_features: int, bias: Optional[Tensor] = None) -> Tensor:
    """x quantized per row to int8 (amax / 127, see lowbit.reference), int8 x int8 -> int32 products,
    y = acc * x_scale * w_scale + bias, output in x's dtype."""
    _check_linear(x, packed_weight, out_features, bias, _da8w8_panel_bytes, "da8w8")
    return sycl.ops_for(x.device).linear_da8w8(x, packed_weight, out_features, bias)


# ------------------------------------------------------------------ fake kernels and autograd (lowbit._opmeta)

_opmeta.register("lowbit")
