"""Typed wrappers of torch.ops.lowbit.*: pack(mode, ...) and linear(mode, ...) for every mode of lowbit.modes, and
pack_<mode> / linear_<mode> for each; and the registration of their fake kernels (for torch.compile and export).

The schemas live in C++ (csrc/op_schemas.h). These wrappers validate in Python first so that a bad argument
raises TypeError / ValueError naming it; the C++ kernels check again (RuntimeError) for direct op calls.
"""

from typing import Optional

import torch
from torch import Tensor

from lowbit import _opmeta, backends, modes, sycl

ACTIVATION_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
_SUPPORTED_DEVICES = ("cpu", "xpu")  # xpu: the SYCL kernels (lowbit.sycl), when a SYCL runtime is installed


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


def _check_linear(mode: modes.Mode, x, packed_weight, out_features, bias, group_size=None):
    _tensor(x, "x", ACTIVATION_DTYPES, "bfloat16, float16 or float32")
    if mode.grouped:
        _check_group_size(x.shape[-1] if x.dim() else 0, group_size, "x.size(-1) = K", mode)
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
    backend = backends.for_device(x.device)
    expected = backend.packed_shape(mode, out_features, k, group_size)
    if mode.grouped and packed_weight.dim() == len(expected) and packed_weight.dim() >= 2 \
            and packed_weight.shape[1] in backend.panel_sizes(mode, k, group_size):
        # int4 with float offsets: the other panel size of the same (K, group_size) (lowbit.layouts.Layout)
        expected = (expected[0], packed_weight.shape[1], *expected[2:])
    if tuple(packed_weight.shape) != expected:
        if packed_weight.dim() == len(expected) and packed_weight.shape[0] == expected[0] \
                and tuple(packed_weight.shape[2:]) == expected[2:]:
            reason = _opmeta.mismatch_reason(mode, packed_weight.shape[1], k, group_size, backend)
            if reason:
                raise ValueError(reason)
        raise ValueError(
            f"packed_weight has shape {tuple(packed_weight.shape)}, but out_features = {out_features} and "
            f"x.size(-1) = K = {k} need {expected}: it was packed for another shape (mismatched K or N?) or "
            "for other kernels (native CPU vs SYCL: see lowbit.sycl.route_cpu)")


def _check_group_size(k: int, group_size, name: str, mode: modes.Mode) -> None:
    m = mode.group_multiple
    what = "even int" if m == 2 else f"multiple of {m}"
    if not isinstance(group_size, int) or isinstance(group_size, bool):
        raise TypeError(f"group_size must be a positive {what} for {mode.name}, got {type(group_size).__name__}")
    if group_size <= 0 or group_size % m:
        raise ValueError(f"group_size must be a positive {what} for {mode.name}, got {group_size!r}")
    if mode.max_group is not None and group_size > mode.max_group:  # (the C++ checks' order: op_checks.h)
        raise ValueError(f"{mode.name} supports group_size <= {mode.max_group} ({mode.limits}), got {group_size}")
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


# ------------------------------------------------------------------ the generic ops

def _check_int4_weight(mode: modes.Mode, weight, scales, zeros, group_size):
    _tensor(weight, "weight", (torch.uint8,), "uint8 [N, K/2] (two int4 per byte)")
    _tensor(scales, "scales", (torch.float32,), "float32 [N, K/group_size]")
    if zeros is not None:
        _tensor(zeros, "zeros", (torch.uint8, torch.float32),
                "uint8 zero points in 0..15 or float32 offsets, [N, K/group_size]")
        if zeros.dtype == torch.float32 and not mode.float_offsets:
            raise TypeError(f"zeros must be uint8 zero points for {mode.name} (float32 offsets are an a16w4 form), "
                            f"got dtype {zeros.dtype}")
    _same_device({"weight": weight, "scales": scales, "zeros": zeros})
    if weight.dim() != 2 or weight.numel() == 0:
        raise ValueError(f"weight must be a non-empty 2-D [N, K/2] tensor, got shape {tuple(weight.shape)}")
    n, k = weight.shape[0], weight.shape[1] * 2
    _check_group_size(k, group_size, "K", mode)
    groups = (n, k // group_size)
    if tuple(scales.shape) != groups:
        raise ValueError(f"scales must have shape [N, K/group_size] = {list(groups)}, got {list(scales.shape)}")
    if zeros is not None:
        if tuple(zeros.shape) != groups:
            raise ValueError(f"zeros must have shape [N, K/group_size] = {list(groups)}, got {list(zeros.shape)}")
        if zeros.dtype == torch.float32:
            if zeros.device.type != "meta" and not torch.isfinite(zeros).all():
                raise ValueError("zeros (float32 offsets) must be finite")
        elif zeros.device.type != "meta" and zeros.numel() and int(zeros.max()) > 15:
            raise ValueError(f"zeros must be in 0..15, got a maximum of {int(zeros.max())}")


def _no_groups(mode: modes.Mode, **given) -> None:
    """An int8 mode has no groups: a group_size or zeros passed to it is a mistake (a bias given by position to
    linear lands in group_size), never something to ignore."""
    if mode.grouped:
        return
    for name, value in given.items():
        if value is not None:
            raise ValueError(f"{mode.name} has no {name} (int8 weights, one scale per output channel), got "
                             f"{type(value).__name__}{'' if isinstance(value, Tensor) else ' ' + repr(value)}; "
                             f"pass bias by keyword: linear({mode.name!r}, x, packed_weight, out_features, bias=...)")


def pack(mode, weight: Tensor, scales: Tensor, zeros: Optional[Tensor] = None, group_size: Optional[int] = None,
         *, backend: Optional[backends.Backend] = None) -> Tensor:
    """Canonical weights (lowbit.formats) -> the packed layout `mode`'s kernels read, for the backend that runs
    tensors on weight's device (or `backend`, a lowbit.backends object).

    int8 modes: weight int8 [N, K], scales float32 [N] (zeros and group_size unused).
    int4 modes: weight uint8 [N, K/2] (low nibble = even k), scales float32 [N, K/g], zeros uint8 [N, K/g] in 0..15
      (w = scale * (q - zero)) or None (symmetric: zero point 8), group_size g; a16w4 also takes float32 offsets
      [N, K/g] as zeros (w = scale * q + offset: GGUF Q4_1's form), packed in a form of its own.
    Raises TypeError / ValueError naming the argument; NotImplementedError when the backend has no kernels for
    the mode."""
    mode = modes.get(mode)
    _no_groups(mode, group_size=group_size, zeros=zeros)
    if mode.grouped:
        _check_int4_weight(mode, weight, scales, zeros, group_size)
        zeros = None if zeros is None else zeros.contiguous()
        key = "weight_offset" if zeros is not None and zeros.is_floating_point() else "weight_zero"
        canonical = {"weight": weight.contiguous(), "weight_scale": scales.contiguous(), key: zeros}
    else:
        _check_int8_weight(weight, scales)
        canonical = {"weight": weight.contiguous(), "weight_scale": scales.contiguous()}
    backend = backend or backends.for_device(weight.device)
    # NotImplementedError naming the mode (and the form) and the backend when it has no kernels there
    if backend.layout(mode).offsets_size is None and "weight_offset" in canonical:
        raise NotImplementedError(f"lowbit: {mode.name} with float offsets has no {backend.label} kernels yet "
                                  "(pass uint8 zero points there)")
    return mode.pack(backend.ops(weight.device), canonical, group_size)


def linear(mode, x: Tensor, packed_weight: Tensor, out_features: int, group_size: Optional[int] = None,
           bias: Optional[Tensor] = None) -> Tensor:
    """y[..., N] = x[..., K] @ dequant(W).T + bias in x's dtype, with `mode`'s arithmetic (lowbit.reference);
    x bfloat16, float16 or float32, contiguous; packed_weight from pack(mode, ...) on x's backend; group_size
    for int4 modes (the one it was packed with). Raises TypeError / ValueError naming the argument."""
    mode = modes.get(mode)
    _no_groups(mode, group_size=group_size)
    _check_linear(mode, x, packed_weight, out_features, bias, group_size)
    return mode.linear(backends.for_device(x.device).ops(x.device), x, packed_weight, out_features, group_size,
                       bias)


# ------------------------------------------------------------------ one named wrapper per mode and op

def _named(mode: modes.Mode):
    if mode.grouped:
        def pack_mode(weight: Tensor, scales: Tensor, zeros: Optional[Tensor], group_size: int) -> Tensor:
            return pack(mode, weight, scales, zeros, group_size)

        def linear_mode(x: Tensor, packed_weight: Tensor, out_features: int, group_size: int,
                        bias: Optional[Tensor] = None) -> Tensor:
            return linear(mode, x, packed_weight, out_features, group_size, bias)
    else:
        def pack_mode(weight: Tensor, scales: Tensor) -> Tensor:
            return pack(mode, weight, scales)

        def linear_mode(x: Tensor, packed_weight: Tensor, out_features: int,
                        bias: Optional[Tensor] = None) -> Tensor:
            return linear(mode, x, packed_weight, out_features, None, bias)

    for fn, op, what in ((pack_mode, "pack", pack), (linear_mode, "linear", linear)):
        fn.__name__ = fn.__qualname__ = f"{op}_{mode.name}"
        fn.__doc__ = f"{op}({mode.name!r}, ...) ({mode.summary}).\n\n{what.__doc__}"
        globals()[fn.__name__] = fn


for _mode in modes.BY_NAME.values():
    _named(_mode)


# ------------------------------------------------------------------ fake kernels and autograd (lowbit._opmeta)

_opmeta.register("lowbit")
