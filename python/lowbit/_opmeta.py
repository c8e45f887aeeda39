"""What the ops are besides their kernels: the argument checks, the fake kernels and the input gradient, for every
mode of lowbit.modes.

- Fake kernels (torch.compile, torch.export, meta tensors) that check what the C++ ops check, with the same
  messages (RuntimeError "lowbit: ..."), so a traced call fails the way an eager one does; and that refuse tensors
  on different devices (a CPU call with one meta tensor dispatches here, and must not return an unwritten tensor).
- The input gradient of the linear ops (torch.library.register_autograd): grad_x = grad_y @ dequant(W), bias
  gradient = grad_y summed over the rows; the packed weight stays frozen (no gradient). For da8w8 this is the
  straight-through estimator (the activation rounding is taken as the identity), as in quantization-aware training.

Registered for lowbit:: (by lowbit.ops) and for lowbit_sycl:: (by lowbit.sycl, when its library loads).
"""

from typing import Optional

import torch
from torch import Tensor

from lowbit import backends, modes

INT_MAX = modes.INT_MAX


def mismatch_reason(mode, got: int, k: int, group_size: Optional[int], backend) -> Optional[str]:
    """When a packing's per-panel size `got` is not what (mode, K, group_size) needs on `backend` and another
    packing of the same K explains it, which argument is wrong (csrc/op_checks.h, packed_size_mismatch);
    else None."""
    mode = modes.get(mode)
    if not mode.grouped:
        for other in modes.BY_NAME.values():
            if other is not mode and not other.grouped and other.layouts.get(backend.name) is not None \
                    and backend.layout(other).panel_size(k, None) == got:
                return (f"packed_weight has the size of pack_{other.name}'s packing for K = {k}, not of "
                        f"pack_{mode.name}'s: linear_{mode.name} needs a weight packed by pack_{mode.name}")
    elif k > 0 and k % 2 == 0:
        for g in range(mode.group_multiple, k + 1, mode.group_multiple):
            if k % g == 0 and got in backend.panel_sizes(mode, k, g):  # zero points or float offsets
                return (f"group_size = {group_size} does not match packed_weight, whose size is that of "
                        f"group_size = {g} for K = {k}")
    return None


# ------------------------------------------------------------------ the C++ checks, mirrored

# torch::headeronly::toString(ScalarType), which the C++ messages print
_SCALAR_TYPE_NAMES = {
    torch.float32: "Float", torch.float64: "Double", torch.float16: "Half", torch.bfloat16: "BFloat16",
    torch.int8: "Char", torch.uint8: "Byte", torch.int16: "Short", torch.int32: "Int", torch.int64: "Long",
    torch.bool: "Bool", torch.complex64: "ComplexFloat", torch.complex128: "ComplexDouble",
    torch.complex32: "ComplexHalf",
}
ACTIVATION_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


def _fail(*parts) -> None:
    raise RuntimeError("lowbit: " + "".join(str(p) for p in parts))


def _dtype_name(dtype) -> str:
    return _SCALAR_TYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


def _check_dtype(t: Tensor, want, name: str, what: str) -> None:
    if t.dtype != want:
        _fail(name, " must be ", what, ", got dtype ", _dtype_name(t.dtype))


def _check_devices(named: dict) -> None:
    devices = {t.device for t in named.values() if t is not None}
    if len(devices) > 1:
        listing = ", ".join(f"{k} on {t.device}" for k, t in named.items() if t is not None)
        _fail("all tensors must be on one device, got ", listing)


def _check_contiguous(named: dict) -> None:
    for name, t in named.items():
        if t is not None and not t.is_contiguous():
            _fail(name, " must be contiguous")


def _check_group(k: int, group_size: int, mode) -> None:
    m = mode.group_multiple
    if not (group_size > 0 and group_size % m == 0):
        if m == 2:
            _fail("group_size must be a positive even number, got ", group_size)
        _fail(mode.name, " needs group_size to be a positive multiple of ", m, ", got ", group_size)
    if mode.max_group is not None and group_size > mode.max_group:
        _fail(mode.name, " supports group_size <= ", mode.max_group, " (", mode.limits, "), got group_size = ",
              group_size)
    if k % group_size != 0:
        _fail("K = ", k, " is not divisible by group_size = ", group_size)


def _check_k(k: int, mode) -> None:
    if mode.max_k is not None and k > mode.max_k:
        _fail(mode.name, " supports K <= ", mode.max_k, " (", mode.limits, "), got K = ", k)


def check_pack_int8(weight: Tensor, scales: Tensor, mode) -> None:
    named = {"weight": weight, "scales": scales}
    _check_devices(named)
    _check_contiguous(named)
    _check_dtype(weight, torch.int8, "weight", "int8 [N, K]")
    _check_dtype(scales, torch.float32, "scales", "float32 [N]")
    if not (weight.dim() == 2 and weight.shape[0] > 0 and weight.shape[1] > 0):
        _fail("weight must be a non-empty 2-D [N, K] tensor")
    if not (scales.dim() == 1 and scales.shape[0] == weight.shape[0]):
        _fail("scales must have shape [N] = [", weight.shape[0], "]")
    _check_k(weight.shape[1], modes.get(mode))


def check_pack_int4(weight: Tensor, scales: Tensor, zeros: Optional[Tensor], group_size: int, mode) -> None:
    named = {"weight": weight, "scales": scales, "zeros": zeros}
    _check_devices(named)
    _check_contiguous(named)
    _check_dtype(weight, torch.uint8, "weight", "uint8 [N, K/2] (two int4 per byte)")
    _check_dtype(scales, torch.float32, "scales", "float32 [N, K/group_size]")
    if not (weight.dim() == 2 and weight.shape[0] > 0 and weight.shape[1] > 0):
        _fail("weight must be a non-empty 2-D [N, K/2] tensor")
    n, k = weight.shape[0], weight.shape[1] * 2
    _check_group(k, group_size, modes.get(mode))
    groups = k // group_size
    if not (scales.dim() == 2 and scales.shape[0] == n and scales.shape[1] == groups):
        _fail("scales must have shape [N, K/group_size] = [", n, ", ", groups, "]")
    if zeros is not None:
        if not modes.get(mode).float_offsets:
            _check_dtype(zeros, torch.uint8, "zeros", "uint8 [N, K/group_size] in 0..15")
        elif zeros.dtype not in (torch.uint8, torch.float32):
            _fail("zeros must be uint8 zero points in 0..15 or float32 offsets, [N, K/group_size], got dtype ",
                  _dtype_name(zeros.dtype))
        if not (zeros.dim() == 2 and zeros.shape[0] == n and zeros.shape[1] == groups):
            _fail("zeros must have shape [N, K/group_size] = [", n, ", ", groups, "]")


def check_linear(x: Tensor, packed: Tensor, out_features: int, bias: Optional[Tensor], mode,
                 group_size: Optional[int], backend) -> None:
    """The checks of the C++ linear ops (csrc/cpu/registration.cpp and sycl/registration.cpp, prepare and the
    mode's own), in their order and with their messages; data-dependent ones (none here) and the SYCL kernels'
    limits on element counts (which depend on the batch size, a dynamic dimension under torch.compile) aside."""
    mode = modes.get(mode)
    k = x.shape[-1] if x.dim() >= 1 else 0
    if mode.grouped:
        if k % 2 != 0:
            _fail(mode.name, " needs an even K = x.size(-1), got ", k)
        _check_group(k, group_size, mode)
    _check_k(k, mode)
    _check_devices({"x": x, "packed_weight": packed, "bias": bias})
    _check_contiguous({"x": x, "packed_weight": packed})
    if x.dtype not in ACTIVATION_DTYPES:
        _fail("x must be bfloat16, float16 or float32, got dtype ", _dtype_name(x.dtype))
    _check_dtype(packed, torch.uint8, "packed_weight", "uint8 (from lowbit.ops.pack_*)")
    if x.dim() < 1:
        _fail("x must have at least one dimension [..., K]")
    if out_features <= 0:
        _fail("out_features must be positive, got ", out_features)
    sycl = backend is backends.SYCL
    if sycl and out_features > INT_MAX:
        _fail("out_features = ", out_features, " is too large for the SYCL kernels (they index with 32-bit ints: "
              "at most ", INT_MAX, ")")
    if k <= 0:
        _fail("x.size(-1) = K must be positive, got 0")
    panels = backend.panels(out_features)
    if sycl:
        if not (packed.dim() == 4 and packed.shape[2] == backend.panel and packed.shape[3] == 4):
            _fail("packed_weight is not in the SYCL layout [panels, rows, 64, 4] (a CPU-panel packing? pack the "
                  "weight on the device it runs on)")
        if packed.shape[0] != panels:
            _fail("packed_weight has ", packed.shape[0], " panels of 64 columns, out_features = ", out_features,
                  " needs ", panels)
    else:
        if not (packed.dim() == 2 and packed.shape[0] == panels):
            _fail("packed_weight does not hold out_features = ", out_features, " (expected ", panels,
                  " panels of 16 columns, got shape [", packed.shape[0] if packed.dim() > 0 else 0, ", ...])")
    if packed.shape[1] not in backend.panel_sizes(mode, k, group_size):  # zero points or float offsets
        reason = mismatch_reason(mode, packed.shape[1], k, group_size, backend)
        _fail(reason or f"x.size(-1) = {k} does not match the in_features packed_weight was packed for ({mode.name})")
    if bias is not None:
        _check_contiguous({"bias": bias})
        if bias.dtype != x.dtype:
            _fail("bias must have x's dtype (", _dtype_name(x.dtype), "), got ", _dtype_name(bias.dtype))
        if not (bias.dim() == 1 and bias.shape[0] == out_features):
            _fail("bias must have shape [out_features] = [", out_features, "]")


# ------------------------------------------------------------------ fake kernels


def _register_fakes(ns: str) -> None:
    def backend_for(t: Tensor):
        # lowbit_sycl:: always runs the SYCL kernels; lowbit:: runs them for XPU tensors only
        return backends.SYCL if ns == "lowbit_sycl" or t.device.type == "xpu" else backends.CPU

    def register(mode) -> None:
        def packed(weight, k, group_size=None, offsets=False):
            shape = backend_for(weight).packed_shape(mode, weight.shape[0], k, group_size, offsets)
            return weight.new_empty(shape, dtype=torch.uint8)

        def linear(x, packed_weight, out_features, bias, group_size=None):
            check_linear(x, packed_weight, out_features, bias, mode, group_size, backend_for(x))
            return x.new_empty((*x.shape[:-1], out_features))

        if mode.grouped:
            def pack(weight, scales, zeros, group_size):
                check_pack_int4(weight, scales, zeros, group_size, mode)
                offsets = zeros is not None and zeros.dtype == torch.float32
                return packed(weight, weight.shape[1] * 2, group_size, offsets)

            def run(x, packed_weight, out_features, group_size, bias=None):
                return linear(x, packed_weight, out_features, bias, group_size)
        else:
            def pack(weight, scales):
                check_pack_int8(weight, scales, mode)
                return packed(weight, weight.shape[1])

            def run(x, packed_weight, out_features, bias=None):
                return linear(x, packed_weight, out_features, bias)

        torch.library.register_fake(f"{ns}::pack_{mode.name}")(pack)
        torch.library.register_fake(f"{ns}::linear_{mode.name}")(run)

    for mode in modes.BY_NAME.values():
        register(mode)


# ------------------------------------------------------------------ the input gradient


def dequantize_packed(mode, packed: Tensor, out_features: int, in_features: int,
                      group_size: Optional[int] = None) -> Tensor:
    """The float32 [N, K] weight a packing multiplies by, read back from either backend's layout."""
    mode = modes.get(mode)
    c = backends.of_packed(packed).unpack(mode, packed, out_features, in_features, group_size,
                                          symmetric=False)  # symmetric packings hold zero points of 8
    canonical = {"weight": c.weight, "weight_scale": c.scale, "weight_zero": c.zero}
    if c.offset is not None:
        canonical = {"weight": c.weight, "weight_scale": c.scale, "weight_offset": c.offset}
    return mode.weights.dequantize(canonical, group_size).float()


def _register_autograd(ns: str) -> None:
    def setup_context(mode):
        def setup(ctx, inputs, output):
            x, packed, out_features = inputs[:3]
            ctx.mode, ctx.out_features, ctx.x_shape, ctx.x_dtype = mode, out_features, x.shape, x.dtype
            ctx.group_size = inputs[3] if mode.grouped else None
            bias = inputs[-1] if len(inputs) > 3 + len(mode.op_args(None)) else None
            ctx.bias_dtype = None if bias is None else bias.dtype
            ctx.save_for_backward(packed)
        return setup

    def backward(ctx, grad):
        (packed,) = ctx.saved_tensors
        n, k = ctx.out_features, ctx.x_shape[-1]
        rows = grad.reshape(-1, n)
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0]:
            w = dequantize_packed(ctx.mode, packed, n, k, ctx.group_size)
            grad_x = (rows.float() @ w).reshape(ctx.x_shape).to(ctx.x_dtype)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[-1]:
            grad_bias = rows.float().sum(dim=0).to(ctx.bias_dtype)
        extra = (None,) * len(ctx.mode.op_args(None))
        return (grad_x, None, None, *extra, grad_bias)

    for mode in modes.BY_NAME.values():
        torch.library.register_autograd(f"{ns}::linear_{mode.name}", backward, setup_context=setup_context(mode))


def register(ns: str) -> None:
    """Fake kernels and autograd of the ops of namespace `ns` (lowbit or lowbit_sycl)."""
    _register_fakes(ns)
    _register_autograd(ns)
