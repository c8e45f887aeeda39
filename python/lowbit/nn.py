"""QuantLinear: a drop-in nn.Linear whose weight is stored int8 or int4 and multiplied by lowbit's kernels."""

from typing import Optional

import torch
from torch import Tensor, nn

from lowbit import formats, ops, sycl

MODES = ("a16w8", "a16w4", "da8w8")


class QuantLinear(nn.Module):
    """y = x @ dequant(W).T + b for x[..., in_features] in bf16, fp16 or fp32 (output in x's dtype).

    mode:
      "a16w8"  int8 per-output-channel symmetric weights; activations kept in 16/32 bit
      "a16w4"  int4 weights, group-wise (group_size; None = per channel), with uint8 zero points unless symmetric
      "da8w8"  int8 weights; activations quantized per token to int8 inside the op, int32 accumulation
    The state_dict holds the canonical format (lowbit.formats): `weight` (int8 [N, K] or uint8 [N, K/2]),
    `weight_scale`, `weight_zero` (a16w4 asymmetric only) and `bias`. The kernel layout (`packed_weight`) is
    derived from it on construction, on every load and on every move to another device (`.to("xpu")` packs for
    the SYCL kernels), and is not saved.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, mode: str = "a16w4",
                 group_size: Optional[int] = 128, symmetric: bool = False,
                 device=None, dtype: Optional[torch.dtype] = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"in_features and out_features must be positive, got {in_features}, {out_features}")
        self.in_features, self.out_features, self.mode = in_features, out_features, mode
        self.symmetric = symmetric if mode == "a16w4" else True
        N, K = out_features, in_features
        if mode == "a16w4":
            self.group_size = formats.resolve_group_size(K, group_size)
            formats.check_int4_shape(K, self.group_size)
            groups = K // self.group_size
            self.register_buffer("weight", torch.zeros(N, K // 2, dtype=torch.uint8, device=device))
            self.register_buffer("weight_scale", torch.ones(N, groups, dtype=torch.float32, device=device))
            zero = None if symmetric else torch.full((N, groups), 8, dtype=torch.uint8, device=device)
            self.register_buffer("weight_zero", zero)
        else:
            self.group_size = None
            self.register_buffer("weight", torch.zeros(N, K, dtype=torch.int8, device=device))
            self.register_buffer("weight_scale", torch.ones(N, dtype=torch.float32, device=device))
            self.register_buffer("weight_zero", None)
        self.bias = nn.Parameter(torch.zeros(N, device=device, dtype=dtype or torch.float32),
                                 requires_grad=False) if bias else None
        self.register_buffer("packed_weight", torch.empty(0, dtype=torch.uint8, device=device), persistent=False)
        self.repack()

    @classmethod
    def from_linear(cls, linear: nn.Linear, mode: str = "a16w4", group_size: Optional[int] = 128,
                    symmetric: bool = False, method: str = "rtn") -> "QuantLinear":
        """Quantize an nn.Linear (see lowbit.formats). method: "rtn" (round to nearest) or "search" (int4 only:
        per-group scales and zeros minimizing the weight error, lowbit.scale_search; int8 ignores it)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        formats.check_int4_method(method)
        w = linear.weight.detach()
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, mode, group_size, symmetric,
                device=w.device, dtype=w.dtype)
        with torch.no_grad():
            if mode == "a16w4":
                packed, scales, zeros = formats.quantize_int4(w, q.group_size, symmetric, method)
                q.weight.copy_(packed)
                q.weight_scale.copy_(scales)
                if zeros is not None:
                    q.weight_zero.copy_(zeros)
            else:
                qw, scales = formats.quantize_int8(w)
                q.weight.copy_(qw)
                q.weight_scale.copy_(scales)
            if linear.bias is not None:
                q.bias.copy_(linear.bias.detach())
        q.repack()
        return q

    def _backend(self):
        """Which kernels the current packing is for: the device, and whether the SYCL kernels run it
        (XPU, or CPU while lowbit.sycl.route_cpu is on)."""
        return self.weight.device, sycl.handles(self.weight.device)

    def repack(self) -> None:
        """Rebuild the kernel layout from the canonical buffers (after any change to them)."""
        self._packed_for = self._backend()
        if self.mode == "a16w8":
            packed = ops.pack_a16w8(self.weight, self.weight_scale)
        elif self.mode == "da8w8":
            packed = ops.pack_da8w8(self.weight, self.weight_scale)
        else:
            packed = ops.pack_a16w4(self.weight, self.weight_scale, self.weight_zero, self.group_size)
        self.packed_weight = packed

    def _apply(self, fn, *args, **kwargs):
        # The scales stay float32 whatever dtype the model is cast to (model.to(torch.bfloat16) must not round
        # them); only their device follows fn. Hidden as None meanwhile, so the buffer keeps its place.
        scale = self._buffers["weight_scale"]
        self._buffers["weight_scale"] = None
        try:
            super()._apply(fn, *args, **kwargs)
        finally:
            moved = fn(scale)
            self._buffers["weight_scale"] = moved if moved.dtype == torch.float32 else scale.to(moved.device)
        # .to(device) moves packed_weight as bytes; the layout belongs to the kernels of the old device
        if self._packed_for != self._backend():
            self.repack()
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.repack()

    def forward(self, x: Tensor) -> Tensor:
        if self._packed_for != self._backend():  # lowbit.sycl.route_cpu was switched since packing
            self.repack()
        bias = self.bias
        if bias is not None and bias.dtype != x.dtype:
            bias = bias.to(x.dtype)
        x = x.contiguous()
        if self.mode == "a16w8":
            return ops.linear_a16w8(x, self.packed_weight, self.out_features, bias)
        if self.mode == "da8w8":
            return ops.linear_da8w8(x, self.packed_weight, self.out_features, bias)
        return ops.linear_a16w4(x, self.packed_weight, self.out_features, self.group_size, bias)

    def dequantized_weight(self) -> Tensor:
        """The float32 weight this layer multiplies by (what the kernels compute with)."""
        from lowbit import reference
        if self.mode == "a16w4":
            return reference.dequantize_int4(self.weight, self.weight_scale, self.weight_zero,
                                             self.group_size).float()
        return reference.dequantize_int8(self.weight, self.weight_scale).float()

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}, symmetric={self.symmetric}" if self.mode == "a16w4" else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"mode={self.mode}{group}")
