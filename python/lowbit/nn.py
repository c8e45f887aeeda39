"""QuantLinear: a drop-in nn.Linear whose weight is stored int8 or int4 and multiplied by lowbit's kernels."""

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from lowbit import _opmeta, formats, layouts, ops, sycl

MODES = ("a16w8", "a16w4", "da8w8")


class QuantLinear(nn.Module):
    """y = x @ dequant(W).T + b for x[..., in_features] in bf16, fp16 or fp32 (output in x's dtype).

    mode:
      "a16w8"  int8 per-output-channel symmetric weights; activations kept in 16/32 bit
      "a16w4"  int4 weights, group-wise (group_size; None = per channel), with uint8 zero points unless symmetric
      "da8w8"  int8 weights; activations quantized per token to int8 inside the op, int32 accumulation

    Only the kernels' layout (`packed_weight`, a non-persistent buffer) and the bias are resident. The state_dict
    holds the canonical format (lowbit.formats), read back from the packed layout when it is made: `weight`
    (int8 [N, K] or uint8 [N, K/2]), `weight_scale` (float32), `weight_zero` (a16w4 asymmetric only) and `bias`.
    The attributes `weight`, `weight_scale` and `weight_zero` are computed the same way on each access. Loading a
    state_dict packs it; a move to another backend (`.to("xpu")`, lowbit.sycl.route_cpu) repacks.
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
        if mode == "a16w4":
            self.group_size = formats.resolve_group_size(in_features, group_size)
            formats.check_int4_shape(in_features, self.group_size)
        else:
            self.group_size = None
        self.bias = nn.Parameter(torch.zeros(out_features, device=device, dtype=dtype or torch.float32),
                                 requires_grad=False) if bias else None
        self.register_buffer("packed_weight", torch.empty(0, dtype=torch.uint8, device=device), persistent=False)
        self._pack(self._zero_weight(device))

    def _zero_weight(self, device) -> Dict[str, Tensor]:
        """Canonical tensors of an all-zero weight (q = the zero point, scale 1), until from_linear or
        load_state_dict fills the layer."""
        fill = {"weight": 0x88 if self.mode == "a16w4" else 0, "weight_scale": 1, "weight_zero": 8}
        return {name: torch.full(shape, fill[name], dtype=kind, device=device)
                for name, (shape, kind) in self._canonical_specs().items()}

    @classmethod
    def from_linear(cls, linear: nn.Linear, mode: str = "a16w4", group_size: Optional[int] = 128,
                    symmetric: bool = False, method: str = "rtn") -> "QuantLinear":
        """Quantize an nn.Linear (see lowbit.formats). method: "rtn" (round to nearest) or "search" (int4 only:
        per-group scales and zeros minimizing the weight error, lowbit.scale_search; int8 ignores it).
        A linear on the meta device gives a QuantLinear on meta (shapes only), to be filled by
        load_state_dict(..., assign=True)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        formats.check_int4_method(method)
        w = linear.weight.detach()
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, mode, group_size, symmetric,
                device=w.device, dtype=w.dtype)
        if w.device.type == "meta":
            # no values to quantize: a layer of the right shapes on meta, for load_state_dict(..., assign=True)
            return q
        with torch.no_grad():
            if mode == "a16w4":
                packed, scales, zeros = formats.quantize_int4(w, q.group_size, symmetric, method)
                q._pack({"weight": packed, "weight_scale": scales, "weight_zero": zeros})
            else:
                qw, scales = formats.quantize_int8(w)
                q._pack({"weight": qw, "weight_scale": scales})
            if linear.bias is not None:
                q.bias.copy_(linear.bias.detach())
        return q

    # ---- the canonical format, in and out of the packed layout

    def _canonical_specs(self) -> Dict[str, Tuple[Tuple[int, ...], torch.dtype]]:
        """state_dict name -> (shape, dtype) of the canonical tensors this layer saves."""
        N, K = self.out_features, self.in_features
        if self.mode != "a16w4":
            return {"weight": ((N, K), torch.int8), "weight_scale": ((N,), torch.float32)}
        groups = K // self.group_size
        specs = {"weight": ((N, K // 2), torch.uint8), "weight_scale": ((N, groups), torch.float32)}
        if not self.symmetric:
            specs["weight_zero"] = ((N, groups), torch.uint8)
        return specs

    def _sycl_wanted(self, device: torch.device, route: Optional[bool] = None) -> bool:
        """Whether the SYCL kernels run this layer on `device` (XPU, or CPU while lowbit.sycl.route_cpu is on;
        `route`: that switch, read once by the caller)."""
        if route is None:
            route = sycl.routing_cpu()
        return device.type == "xpu" or (device.type == "cpu" and route)

    @property
    def _sycl_layout(self) -> bool:
        """Which kernels' layout the packed bytes are in. It is read off the packed tensor itself (SYCL packings
        are 4-D, native CPU ones 2-D), so the packing and its layout are one attribute: a thread reading them
        while another repacks sees either the old packing or the new one, never one with the other's flag."""
        return _opmeta.is_sycl_layout(self.packed_weight)

    def _pack(self, canonical: Dict[str, Optional[Tensor]], sycl_layout: Optional[bool] = None) -> Tensor:
        """Packs canonical tensors for the kernels of `sycl_layout` (default: those that run the layer where the
        tensors are) and makes the result the layer's packing, in one assignment. Returns it."""
        weight, scale = canonical["weight"], canonical["weight_scale"]
        if sycl_layout is None:
            sycl_layout = self._sycl_wanted(weight.device)
        if self.mode == "a16w8":
            packed = ops.pack_a16w8(weight, scale, _sycl_layout=sycl_layout)
        elif self.mode == "da8w8":
            packed = ops.pack_da8w8(weight, scale, _sycl_layout=sycl_layout)
        else:
            packed = ops.pack_a16w4(weight, scale, canonical.get("weight_zero"), self.group_size,
                                    _sycl_layout=sycl_layout)
        self.packed_weight = packed
        return packed

    def canonical(self, packed: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The canonical tensors (state_dict names, without the bias), unpacked from the kernel layout (of
        `packed`, default the layer's packing)."""
        packed = self.packed_weight if packed is None else packed
        c = layouts.unpack(self.mode, packed, self.out_features, self.in_features, self.group_size,
                           self.symmetric, sycl_layout=_opmeta.is_sycl_layout(packed))
        out = {"weight": c.weight, "weight_scale": c.scale}
        if c.zero is not None:
            out["weight_zero"] = c.zero
        return out

    def _packed_for(self, sycl_layout: bool) -> Tensor:
        """The layer's packing in the layout of `sycl_layout`, repacked from the one it is in if needed. Reads
        the packing once, so a concurrent repack by another thread cannot mix two packings."""
        packed = self.packed_weight
        if _opmeta.is_sycl_layout(packed) != sycl_layout:
            packed = self._pack(self.canonical(packed), sycl_layout)
        return packed

    @property
    def weight(self) -> Tensor:
        return self.canonical()["weight"]

    @property
    def weight_scale(self) -> Tensor:
        return self.canonical()["weight_scale"]

    @property
    def weight_zero(self) -> Optional[Tensor]:
        return self.canonical().get("weight_zero")

    def _apply(self, fn, *args, **kwargs):
        # A cast (model.to(torch.bfloat16)) leaves the uint8 layout, and so the fp32 scales inside it, untouched.
        # A move carries the bytes as they are, in the layout of the kernels they were packed for.
        super()._apply(fn, *args, **kwargs)
        self._repack_if_needed()
        return self

    def _repack_if_needed(self) -> None:
        self._packed_for(self._sycl_wanted(self.packed_weight.device))

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for name, tensor in self.canonical().items():
            destination[prefix + name] = tensor

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # the bias loads as usual; the canonical tensors are not module attributes, so torch has just listed
        # them as unexpected: take them back, check them as torch checks a buffer, and pack what arrived
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        loaded, errors_before = {}, len(error_msgs)
        for name, (shape, dtype) in self._canonical_specs().items():
            key = prefix + name
            if key in unexpected_keys:
                unexpected_keys.remove(key)
            if key not in state_dict:
                missing_keys.append(key)
                continue
            t = state_dict[key]
            if not isinstance(t, Tensor):
                error_msgs.append(f"{key} must be a tensor, got {type(t).__name__}")
            elif tuple(t.shape) != shape:
                error_msgs.append(f"size mismatch for {key}: copying a param with shape {t.shape} from "
                                  f"checkpoint, the shape in current model is {torch.Size(shape)}.")
            elif t.dtype != dtype:
                error_msgs.append(f"dtype mismatch for {key}: the checkpoint holds {t.dtype}, {self.mode} "
                                  f"needs {dtype} (lowbit.formats)")
            else:
                loaded[name] = t
        if len(error_msgs) > errors_before or not loaded:
            return
        # load_state_dict(assign=True) takes the checkpoint's device (e.g. a model built on meta); else the layer's
        assign = local_metadata.get("assign_to_params_buffers", False)
        device = next(iter(loaded.values())).device if assign else self.packed_weight.device
        canonical = self.canonical() if len(loaded) < len(self._canonical_specs()) else {}  # strict=False, partial
        canonical = {name: t.to(device) for name, t in {**canonical, **loaded}.items()}
        with torch.no_grad():
            self._pack(canonical)

    # ---- compute

    def forward(self, x: Tensor) -> Tensor:
        # The packed weight is this layer's own, so only x is checked here (the functional lowbit.ops.* check
        # every argument; the C++ op checks again): the per-call cost matters at decode, where a step is many
        # small calls.
        # lowbit.sycl.route_cpu may have been switched since packing, and may be switched by another thread
        # during this call: read it once, and pack and run with that one decision
        route = sycl.routing_cpu()
        device = self.packed_weight.device
        sycl_layout = self._sycl_wanted(device, route)
        packed = self._packed_for(sycl_layout)
        bias = self.bias
        if not isinstance(x, Tensor) or x.dtype not in ops.ACTIVATION_DTYPES or x.dim() == 0 \
                or x.shape[-1] != self.in_features or x.device != packed.device \
                or (bias is not None and bias.device != packed.device):
            self._explain_bad_input(x)
        if bias is not None and bias.dtype != x.dtype:
            bias = bias.to(x.dtype)
        kernels = ops.kernels_for(device, sycl_layout)
        x = x.contiguous()
        if self.mode == "a16w8":
            return kernels.linear_a16w8(x, packed, self.out_features, bias)
        if self.mode == "da8w8":
            return kernels.linear_da8w8(x, packed, self.out_features, bias)
        return kernels.linear_a16w4(x, packed, self.out_features, self.group_size, bias)

    def _explain_bad_input(self, x) -> None:
        if isinstance(x, Tensor) and x.dim() and x.shape[-1] != self.in_features:
            raise ValueError(f"x must have in_features = {self.in_features} as its last dimension, "
                             f"got shape {tuple(x.shape)}")
        ops.check_input(x, self.packed_weight)
        bias = self.bias
        if bias is not None and bias.device != self.packed_weight.device:
            hint = (" (it was never loaded: a layer built on meta keeps a meta bias until load_state_dict(..., "
                    "assign=True) is given one)" if bias.device.type == "meta" else "")
            raise ValueError(f"bias is on {bias.device} but the layer's weight is on {self.packed_weight.device}"
                             f"{hint}")

    def dequantized_weight(self) -> Tensor:
        """The float32 weight this layer multiplies by (what the kernels compute with)."""
        from lowbit import reference
        c = self.canonical()
        if self.mode == "a16w4":
            return reference.dequantize_int4(c["weight"], c["weight_scale"], c.get("weight_zero"),
                                             self.group_size).float()
        return reference.dequantize_int8(c["weight"], c["weight_scale"]).float()

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}, symmetric={self.symmetric}" if self.mode == "a16w4" else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"mode={self.mode}{group}")
