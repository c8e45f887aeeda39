"""What each quantization mode is, in one table (in the spirit of ggml's type traits).

A mode is a weight format (its canonical tensors, quantizer and dequantizer: lowbit.formats), what happens to the
activations, its ops (torch.ops.lowbit.pack_<name> / linear_<name>, schemas in csrc/op_schemas.h), its packed
layout on each backend (lowbit.layouts) and its pure-torch reference (lowbit.reference). QuantLinear, quantize_,
the functional wrappers (lowbit.ops), the fake kernels and the input gradient (lowbit._opmeta) read this table
(BY_NAME, get);
none of them branches on a mode's name.

Adding a mode: its kernels and packers (C++ and/or SYCL) and op schemas, its layout reader(s) in lowbit.layouts,
its reference, one `Mode(...)` entry below, and its tests (most op tests iterate over MODES).
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Tuple

import torch
from torch import Tensor

from lowbit import formats, layouts, reference

INT_MAX = 2 ** 31 - 1

Specs = Dict[str, Tuple[Tuple[int, ...], torch.dtype]]


# ------------------------------------------------------------------ weight formats

@dataclass(frozen=True)
class WeightFormat:
    """A canonical weight format (lowbit.formats): what state_dict holds, independent of device and ISA."""
    name: str
    grouped: bool  # scales (and zero points) per group of group_size consecutive k
    # (N, K, group_size, symmetric[, offsets]) -> name: (shape, dtype)
    specs: Callable[..., Specs]
    quantize: Callable[..., Dict[str, Optional[Tensor]]]  # (w, group_size, symmetric, method[, offsets])
    dequantize: Callable[[Dict[str, Tensor], Optional[int]], Tensor]  # canonical -> float64 [N, K]
    pack_args: Callable[[Dict[str, Optional[Tensor]], Optional[int]], tuple]  # canonical -> the pack op's args
    placeholder: Dict[str, int]  # fill values of an all-zero weight (q = its zero point, scale 1)


def _int8_specs(n, k, g, symmetric):
    return {"weight": ((n, k), torch.int8), "weight_scale": ((n,), torch.float32)}


def _int4_specs(n, k, g, symmetric, offsets=False):
    specs = {"weight": ((n, k // 2), torch.uint8), "weight_scale": ((n, k // g), torch.float32)}
    if offsets:  # w = scale * q + offset (exclusive with zero points)
        specs["weight_offset"] = ((n, k // g), torch.float32)
    elif not symmetric:
        specs["weight_zero"] = ((n, k // g), torch.uint8)
    return specs


def _quantize_int8(w, g, symmetric, method):
    q, s = formats.quantize_int8(w)
    return {"weight": q, "weight_scale": s}


def _quantize_int4(w, g, symmetric, method, offsets=False):
    q, s, z = formats.quantize_int4(w, g, symmetric, method, offsets=offsets)
    return {"weight": q, "weight_scale": s, "weight_offset" if offsets else "weight_zero": z}


def _zeros_or_offsets(c):
    """The int4 `zeros` argument of the pack op and the reference: uint8 zero points, float32 offsets or None."""
    return c["weight_offset"] if c.get("weight_offset") is not None else c.get("weight_zero")


INT8 = WeightFormat(
    "int8", grouped=False, specs=_int8_specs, quantize=_quantize_int8,
    dequantize=lambda c, g: reference.dequantize_int8(c["weight"], c["weight_scale"]),
    pack_args=lambda c, g: (c["weight"], c["weight_scale"]),
    placeholder={"weight": 0, "weight_scale": 1})

INT4 = WeightFormat(
    "int4", grouped=True, specs=_int4_specs, quantize=_quantize_int4,
    dequantize=lambda c, g: reference.dequantize_int4(c["weight"], c["weight_scale"], _zeros_or_offsets(c), g),
    pack_args=lambda c, g: (c["weight"], c["weight_scale"], _zeros_or_offsets(c), g),
    placeholder={"weight": 0x88, "weight_scale": 1, "weight_zero": 8, "weight_offset": -8})


# ------------------------------------------------------------------ modes

@dataclass(frozen=True)
class Mode:
    """One quantization mode: a weight format, an activation treatment, ops, layouts and a reference."""
    name: str
    summary: str
    weights: WeightFormat
    dynamic_activations: bool  # activations quantized per token to int8 inside the op (da*), else kept as given
    # y = reference(x, canonical, group_size, bias, dtype): the exact semantics the kernels are held to
    reference: Callable[..., Tensor]
    layouts: Mapping[str, layouts.Layout]  # backend name (lowbit.backends) -> packed layout; absent: no kernels
    peer: str  # PyTorch's nearest op, for the benchmarks
    group_multiple: int = 2  # int4: group_size must be a positive multiple of this
    max_group: Optional[int] = None  # int4: largest group size the kernels' integer sums allow
    max_k: Optional[int] = None  # largest K the kernels' integer sums allow
    limits: str = field(default="", repr=False)  # why max_group / max_k are what they are
    # int4: also the form with float offsets, w = scale * q + offset (canonical `weight_offset`, GGUF Q4_1's d*q + m)
    float_offsets: bool = False

    @property
    def grouped(self) -> bool:
        return self.weights.grouped

    def specs(self, n: int, k: int, group_size: Optional[int], symmetric: bool, offsets: bool = False) -> Specs:
        if offsets:
            return self.weights.specs(n, k, group_size, symmetric, offsets)
        return self.weights.specs(n, k, group_size, symmetric)

    def offsets_error(self, symmetric: bool) -> Optional[str]:
        """Why this mode cannot take float offsets (with `symmetric`), or None."""
        if not self.float_offsets:
            return f"{self.name} has no float-offset form (offsets=True is an a16w4 option)"
        if symmetric:
            return "offsets=True and symmetric=True exclude each other (float offsets are asymmetric)"
        return None

    def op_args(self, group_size: Optional[int]) -> tuple:
        """The linear op's arguments between out_features and bias."""
        return (group_size,) if self.grouped else ()

    def pack(self, ns, canonical: Dict[str, Optional[Tensor]], group_size: Optional[int]) -> Tensor:
        """Canonical tensors -> this mode's packing, through the op namespace `ns` (a lowbit.backends choice)."""
        return getattr(ns, f"pack_{self.name}")(*self.weights.pack_args(canonical, group_size))

    def linear(self, ns, x: Tensor, packed: Tensor, out_features: int, group_size: Optional[int],
               bias: Optional[Tensor]) -> Tensor:
        return getattr(ns, f"linear_{self.name}")(x, packed, out_features, *self.op_args(group_size), bias)

    def group_size_error(self, k: int, group_size: int) -> Optional[str]:
        """Why this mode cannot take (K, group_size), or None (int4 modes; int8 ones have no groups)."""
        if not self.grouped:
            return None
        if k % 2:
            return f"int4 weights need an even in_features (two per byte), got K = {k}"
        m = self.group_multiple
        what = "even number" if m == 2 else f"multiple of {m}"
        if group_size == k and k % m:  # per channel (group_size None / -1 resolves to K)
            return f"per-channel {self.name} needs in_features K to be a {what}, got K = {k}"
        if not isinstance(group_size, int) or group_size <= 0 or group_size % m:
            return f"{self.name}: group_size must be a positive {what} or None (per channel), got {group_size}"
        if self.max_group is not None and group_size > self.max_group:
            return f"{self.name} supports group_size <= {self.max_group} ({self.limits}), got {group_size}"
        if k % group_size:
            return f"in_features K = {k} is not divisible by group_size = {group_size}"
        return None

    def k_error(self, k: int) -> Optional[str]:
        if self.max_k is not None and k > self.max_k:
            return f"{self.name} supports K <= {self.max_k} ({self.limits}), got K = {k}"
        return None


def _a16w8_ref(x, c, g, bias, dtype):
    return reference.linear_a16w8(x, c["weight"], c["weight_scale"], bias, dtype)


def _a16w4_ref(x, c, g, bias, dtype):
    return reference.linear_a16w4(x, c["weight"], c["weight_scale"], _zeros_or_offsets(c), g, bias, dtype)


def _da8w8_ref(x, c, g, bias, dtype):
    return reference.linear_da8w8(x, c["weight"], c["weight_scale"], bias, dtype)


def _da8w4_ref(x, c, g, bias, dtype):
    return reference.linear_da8w4(x, c["weight"], c["weight_scale"], c.get("weight_zero"), g, bias, dtype)


# da8w8: K products of an activation in -127..127 and a weight in -128..127 sum within int32 (csrc api.h kMaxK8)
MAX_K8 = INT_MAX // (127 * 128)
# da8w4: a group's sum of (q - zero) * xq, |q - zero| <= 15 and |xq| <= 127, stays within int32
MAX_GROUP_DA8W4 = INT_MAX // (15 * 127)

BY_NAME: Dict[str, Mode] = {m.name: m for m in (
    Mode("a16w8", "int8 per-output-channel symmetric weights; activations kept in 16/32 bit",
         INT8, dynamic_activations=False, reference=_a16w8_ref, peer="torch int8",
         layouts={"cpu": layouts.CPU_A16W8, "sycl": layouts.SYCL_INT8}),
    Mode("a16w4", "int4 group-wise weights, uint8 zero points, float offsets or symmetric; activations kept in 16/32 bit",
         INT4, dynamic_activations=False, reference=_a16w4_ref, peer="torch int4",
         layouts={"cpu": layouts.CPU_A16W4, "sycl": layouts.SYCL_A16W4}, float_offsets=True),
    Mode("da8w8", "int8 per-channel weights; activations quantized per token to int8 in the op, int32 sums",
         INT8, dynamic_activations=True, reference=_da8w8_ref, peer="torch _int_mm",
         layouts={"cpu": layouts.CPU_DA8W8, "sycl": layouts.SYCL_INT8},
         max_k=MAX_K8, limits="int32 accumulation"),
    Mode("da8w4", "int4 group-wise weights as a16w4; activations quantized per token to int8 in the op, exact int32 "
         "sums per group scaled in fp32 (llama.cpp's q4 x q8 arithmetic)",
         INT4, dynamic_activations=True, reference=_da8w4_ref, peer="torch int4",
         layouts={"cpu": layouts.CPU_DA8W4, "sycl": layouts.SYCL_DA8W4},
         group_multiple=8, max_group=MAX_GROUP_DA8W4, limits="int32 group sums"),
)}
NAMES: Tuple[str, ...] = tuple(BY_NAME)


def get(mode) -> Mode:
    """The description of mode `mode` (a name or a Mode); ValueError naming the modes otherwise."""
    if isinstance(mode, Mode):
        return mode
    if mode not in BY_NAME:
        raise ValueError(f"mode must be one of {NAMES}, got {mode!r}")
    return BY_NAME[mode]
