"""PyTorch's own int4/int8 CPU linear ops as nn.Linear drop-ins: the peers lowbit is measured against end to end.

Each peer is built from lowbit's canonical format (lowbit.formats), so a peer and the lowbit layer it is compared
with multiply by exactly the same integers and scales: any difference in speed is the kernels', and any difference in
output is arithmetic order. The calls are the ones in PyTorch 2.13 (see docs/benchmarks.md, "End-to-end"):
  - TorchInt4Linear:  torch._weight_int4pack_mm_for_cpu(x, packed, group_size, scales_and_zeros)
  - TorchInt8Linear:  torch._weight_int8pack_mm(x, w_int8, scales)
  - TorchDA8W8Linear: per-token int8 quantization of x in eager torch, torch._int_mm, then the two scales
"""

import logging
from typing import Optional

import torch
from torch import Tensor, nn

from lowbit import formats, reference

log = logging.getLogger("lowbit")

PEERS = ("torch-int4", "torch-int8", "torch-da8w8")
# torch._weight_int4pack_mm_for_cpu accepts only these group sizes, and output features in multiples of 16
TORCH_INT4_GROUP_SIZES = (32, 64, 128, 256)
TORCH_INT4_N_MULTIPLE = 16
# torch's int4 format dequantizes as (q - 8) * scale + zero, with a float zero at q = 8
TORCH_INT4_MIDPOINT = 8


class _PeerLinear(nn.Module):
    """Common shape handling: torch's ops take 2-D x; these modules take x[..., K] like nn.Linear."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def _mm(self, x2: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        y = self._mm(x.reshape(-1, self.in_features).contiguous())
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class TorchInt8Linear(_PeerLinear):
    """torch._weight_int8pack_mm: int8 per-channel weights, 16/32-bit activations (vectorized for bf16 only)."""

    def __init__(self, linear: nn.Linear, canonical: Optional[tuple] = None):
        """canonical: (q int8 [N, K], scales float32 [N]) to hold instead of quantizing linear.weight."""
        super().__init__(linear)
        q, scales = canonical if canonical is not None else formats.quantize_int8(linear.weight.detach())
        self.register_buffer("weight", q)
        # the op wants scales in x's dtype; keep them in the model's dtype so the common case converts nothing
        self.register_buffer("weight_scale", scales.to(linear.weight.dtype))

    def _mm(self, x2: Tensor) -> Tensor:
        return torch._weight_int8pack_mm(x2, self.weight, self.weight_scale.to(x2.dtype))


class TorchInt4Linear(_PeerLinear):
    """torch._weight_int4pack_mm_for_cpu: int4 group-wise weights with float zero points."""

    def __init__(self, linear: nn.Linear, group_size: int = 128, canonical: Optional[tuple] = None):
        """canonical: (packed uint8 [N, K/2], scales [N, K/g], uint8 zeros or float32 offsets [N, K/g]) to hold
        instead of quantizing linear.weight (round to nearest)."""
        super().__init__(linear)
        if group_size not in TORCH_INT4_GROUP_SIZES:
            raise ValueError(f"torch's int4 CPU op takes group_size in {TORCH_INT4_GROUP_SIZES}, got {group_size}")
        if linear.out_features % TORCH_INT4_N_MULTIPLE:
            raise ValueError(f"torch's int4 CPU op needs out_features % {TORCH_INT4_N_MULTIPLE} == 0, "
                             f"got {linear.out_features}")
        self.group_size = group_size
        packed, scales, zeros = (canonical if canonical is not None
                                 else formats.quantize_int4(linear.weight.detach(), group_size))
        q = formats.unpack_int4(packed).to(torch.int32)
        self.register_buffer("weight", torch._convert_weight_to_int4pack_for_cpu(q, 1))
        if zeros is not None and zeros.is_floating_point():
            # lowbit: w = s * q + offset;  torch: w = (q - 8) * s + zero  =>  zero = offset + 8 * s (one rounding)
            float_zero = zeros + TORCH_INT4_MIDPOINT * scales
        else:
            # lowbit: w = (q - z) * s;  torch: w = (q - 8) * s + zero  =>  zero = (8 - z) * s  (exact in fp32)
            z = zeros.float() if zeros is not None else torch.full_like(scales, TORCH_INT4_MIDPOINT)
            float_zero = (TORCH_INT4_MIDPOINT - z) * scales
        sz = torch.stack([scales, float_zero], dim=-1).transpose(0, 1).contiguous()  # [K/g, N, 2]
        self.register_buffer("scales_and_zeros", sz.to(linear.weight.dtype))

    def _mm(self, x2: Tensor) -> Tensor:
        return torch._weight_int4pack_mm_for_cpu(x2, self.weight, self.group_size,
                                                 self.scales_and_zeros.to(x2.dtype))


class TorchDA8W8Linear(_PeerLinear):
    """Dynamic int8 activations x int8 weights in eager torch: per-token quantization, torch._int_mm, rescale."""

    def __init__(self, linear: nn.Linear):
        super().__init__(linear)
        q, scales = formats.quantize_int8(linear.weight.detach())
        self.register_buffer("weight", q)  # [N, K]; _int_mm gets the transposed view (a [K, N] copy is slower)
        self.register_buffer("weight_scale", scales)

    def _mm(self, x2: Tensor) -> Tensor:
        xq, xs = reference.quantize_activation_per_token(x2)
        acc = torch._int_mm(xq, self.weight.t())
        return (acc.float() * xs[:, None] * self.weight_scale).to(x2.dtype)


def _unsupported(kind: str, linear: nn.Linear, group_size: int) -> Optional[str]:
    if kind != "torch-int4":
        return None
    if linear.out_features % TORCH_INT4_N_MULTIPLE:
        return f"out_features {linear.out_features} is not a multiple of {TORCH_INT4_N_MULTIPLE}"
    if linear.in_features % group_size:
        return f"in_features {linear.in_features} is not divisible by group_size {group_size}"
    return None


def swap_linears(model: nn.Module, kind: str, group_size: int = 128) -> nn.Module:
    """Replace every nn.Linear in `model` by the peer `kind` (one of PEERS), in place; returns the model.
    Layers the op cannot take stay nn.Linear, with the reason logged on the "lowbit" logger."""
    if kind not in PEERS:
        raise ValueError(f"kind must be one of {PEERS}, got {kind!r}")
    make = {"torch-int4": lambda m: TorchInt4Linear(m, group_size),
            "torch-int8": TorchInt8Linear, "torch-da8w8": TorchDA8W8Linear}[kind]
    for fqn, linear in [(n, m) for n, m in model.named_modules() if type(m) is nn.Linear]:
        reason = _unsupported(kind, linear, group_size)
        if reason:
            log.warning("lowbit: keeping %s as nn.Linear (%s): %s", fqn, kind, reason)
            continue
        parent_name, _, child = fqn.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, make(linear))
    return model


def from_quantlinear(layer: nn.Module, kind: str, dtype: Optional[torch.dtype] = None) -> nn.Module:
    """PyTorch's op layer `kind` ("torch-int8" for an a16w8 QuantLinear, "torch-int4" for an a16w4 one) holding
    exactly the layer's integers and scales (its offsets or zero points folded into torch's float zero), with
    scales and bias in `dtype` (default the bias's, else bfloat16). ValueError for another pairing."""
    from types import SimpleNamespace
    c = layer.canonical()
    bias = None if layer.bias is None else layer.bias.detach().to(dtype or layer.bias.dtype)
    dtype = dtype or (bias.dtype if bias is not None else torch.bfloat16)
    shape = SimpleNamespace(in_features=layer.in_features, out_features=layer.out_features, bias=bias,
                            weight=torch.empty(0, dtype=dtype))
    if kind == "torch-int8" and layer.mode == "a16w8":
        return TorchInt8Linear(shape, (c["weight"], c["weight_scale"]))
    if kind == "torch-int4" and layer.mode == "a16w4":
        zeros = c.get("weight_offset", c.get("weight_zero"))
        return TorchInt4Linear(shape, layer.group_size, (c["weight"], c["weight_scale"], zeros))
    raise ValueError(f"no {kind} layer holds a {layer.mode} QuantLinear's integers")


def is_linear(module: nn.Module) -> bool:
    """Any module that does a model's linear layer: nn.Linear, lowbit's QuantLinear, or a peer."""
    from lowbit.nn import QuantLinear
    return isinstance(module, (nn.Linear, QuantLinear, _PeerLinear))
