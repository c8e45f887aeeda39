"""QuantLinear: a drop-in nn.Linear whose weight is stored int8 or int4 and multiplied by lowbit's kernels."""

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from lowbit import backends, formats, modes, ops, sycl

MODES = modes.NAMES


class QuantLinear(nn.Module):
    """y = x @ dequant(W).T + b for x[..., in_features] in bf16, fp16 or fp32 (output in x's dtype).

    mode: one of lowbit.modes (lowbit.MODES), e.g.
      "a16w8"  int8 per-output-channel symmetric weights; activations kept in 16/32 bit
      "a16w4"  int4 weights, group-wise (group_size; None = per channel), with uint8 zero points unless symmetric,
               or with float offsets (offsets=True: w = scale * q + offset, GGUF Q4_1's form)
      "da8w8"  int8 weights; activations quantized per token to int8 inside the op, int32 accumulation
      "da8w4"  int4 weights as a16w4; activations quantized per token to int8 inside the op, int32 group sums

    Only the kernels' layout (`packed_weight`, a non-persistent buffer) and the bias are resident. The state_dict
    holds the canonical format (lowbit.formats), read back from the packed layout when it is made: `weight`
    (int8 [N, K] or uint8 [N, K/2]), `weight_scale` (float32), `weight_zero` (asymmetric int4 only) or
    `weight_offset` (float32, int4 with offsets=True) and `bias`. The attributes `weight`, `weight_scale`,
    `weight_zero` and `weight_offset` are computed the same way on each access. Loading a
    state_dict packs it; a move to another backend (`.to("xpu")`, lowbit.sycl.route_cpu) repacks.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, mode: str = "a16w4",
                 group_size: Optional[int] = 128, symmetric: bool = False,
                 device=None, dtype: Optional[torch.dtype] = None, offsets: bool = False):
        super().__init__()
        self.mode = modes.get(mode).name
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"in_features and out_features must be positive, got {in_features}, {out_features}")
        if offsets:
            reason = self._mode.offsets_error(symmetric)
            if reason:
                raise ValueError(reason)
        self.in_features, self.out_features = in_features, out_features
        self.symmetric = symmetric if self._mode.grouped else True
        self.offsets = bool(offsets)
        self.group_size = None
        if self._mode.grouped:
            self.group_size = formats.resolve_group_size(in_features, group_size)
            reason = self._mode.group_size_error(in_features, self.group_size)
            if reason:
                raise ValueError(reason)
        self.bias = nn.Parameter(torch.zeros(out_features, device=device, dtype=dtype or torch.float32),
                                 requires_grad=False) if bias else None
        self.register_buffer("packed_weight", torch.empty(0, dtype=torch.uint8, device=device), persistent=False)
        self._pack(self._zero_weight(device))

    @property
    def _mode(self) -> modes.Mode:
        # looked up, not stored: the module then pickles (torch.save(model)) by the mode's name
        return modes.get(self.mode)

    def _zero_weight(self, device) -> Dict[str, Tensor]:
        """Canonical tensors of an all-zero weight (q = the zero point, scale 1), until from_linear or
        load_state_dict fills the layer."""
        fill = self._mode.weights.placeholder
        return {name: torch.full(shape, fill[name], dtype=kind, device=device)
                for name, (shape, kind) in self._canonical_specs().items()}

    @classmethod
    def from_linear(cls, linear: nn.Linear, mode: str = "a16w4", group_size: Optional[int] = 128,
                    symmetric: bool = False, method: str = "rtn", offsets: bool = False) -> "QuantLinear":
        """Quantize an nn.Linear (see lowbit.formats). method: "rtn" (round to nearest) or "hqq" (int4 only: HQQ's
        optimizer, lowbit.hqq_method, needs the `hqq` package); int8 ignores it. offsets (a16w4): float offsets
        instead of uint8 zero points.
        A linear on the meta device gives a QuantLinear on meta (shapes only), to be filled by
        load_state_dict(..., assign=True)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        formats.check_int4_method(method)
        w = linear.weight.detach()
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, mode, group_size, symmetric,
                device=w.device, dtype=w.dtype, offsets=offsets)
        if w.device.type == "meta":
            # no values to quantize: a layer of the right shapes on meta, for load_state_dict(..., assign=True)
            return q
        with torch.no_grad():
            if offsets:
                q._pack(q._mode.weights.quantize(w, q.group_size, symmetric, method, offsets=True))
            else:
                q._pack(q._mode.weights.quantize(w, q.group_size, symmetric, method))
            if linear.bias is not None:
                q.bias.copy_(linear.bias.detach())
        return q

    @classmethod
    def from_canonical(cls, canonical: Dict[str, Tensor], mode: str = "a16w4", group_size: Optional[int] = None,
                       bias: Optional[Tensor] = None, device=None) -> "QuantLinear":
        """A layer holding given canonical tensors (lowbit.formats; state_dict names: `weight`, `weight_scale`,
        and for int4 `weight_zero`, `weight_offset` or neither = symmetric), e.g. integers read from a GGUF file
        (lowbit.load_gguf_). group_size: int4 only (None = per channel). bias: float [N] or None. Shapes and dtypes
        are checked as load_state_dict checks them (ValueError)."""
        m = modes.get(mode)
        weight = canonical["weight"]
        n = weight.shape[0]
        k = weight.shape[1] * (2 if m.grouped else 1)
        offsets = canonical.get("weight_offset") is not None
        symmetric = not offsets and canonical.get("weight_zero") is None
        device = device if device is not None else weight.device
        layer = cls(k, n, bias is not None, mode, group_size, symmetric, device=device,
                    dtype=bias.dtype if bias is not None else None, offsets=offsets)
        given = {name: t for name, t in canonical.items() if t is not None}
        specs = layer._canonical_specs()
        if set(given) != set(specs):
            raise ValueError(f"canonical must hold {sorted(specs)} for this form, got {sorted(given)}")
        for name, (shape, dtype) in specs.items():
            t = given[name]
            if tuple(t.shape) != shape or t.dtype != dtype:
                raise ValueError(f"{name} must be {dtype} of shape {list(shape)}, got {t.dtype} {list(t.shape)}")
        with torch.no_grad():
            layer._pack({name: t.to(device) for name, t in given.items()})
            if bias is not None:
                layer.bias.copy_(bias)
        return layer

    # ---- the canonical format, in and out of the packed layout

    def _canonical_specs(self) -> Dict[str, Tuple[Tuple[int, ...], torch.dtype]]:
        """state_dict name -> (shape, dtype) of the canonical tensors this layer saves."""
        return self._mode.specs(self.out_features, self.in_features, self.group_size, self.symmetric,
                                getattr(self, "offsets", False))

    def _pack(self, canonical: Dict[str, Optional[Tensor]], backend: Optional[backends.Backend] = None) -> Tensor:
        """Packs canonical tensors for `backend` (default: the one that runs tensors where they are) and makes
        the result the layer's packing, in one assignment. Returns it."""
        mode = self._mode
        packed = ops.pack(mode, *mode.weights.pack_args(canonical, self.group_size), backend=backend)
        self.packed_weight = packed
        return packed

    def canonical(self, packed: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The canonical tensors (state_dict names, without the bias), unpacked from the kernel layout (of
        `packed`, default the layer's packing)."""
        packed = self.packed_weight if packed is None else packed
        c = backends.of_packed(packed).unpack(self._mode, packed, self.out_features, self.in_features,
                                              self.group_size, self.symmetric)
        out = {"weight": c.weight, "weight_scale": c.scale}
        if c.zero is not None:
            out["weight_zero"] = c.zero
        if c.offset is not None:
            out["weight_offset"] = c.offset
        return out

    def _packed_for(self, backend: backends.Backend) -> Tensor:
        """The layer's packing in `backend`'s layout, repacked from the one it is in if needed. Reads the packing
        once, so a concurrent repack by another thread cannot mix two packings. (Which layout the bytes are in is
        read off the packed tensor itself, lowbit.backends.of_packed, so the packing and its layout are one
        attribute.)"""
        packed = self.packed_weight
        if not backend.owns(packed):
            packed = self._pack(self.canonical(packed), backend)
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

    @property
    def weight_offset(self) -> Optional[Tensor]:
        return self.canonical().get("weight_offset")

    def _apply(self, fn, *args, **kwargs):
        # A cast (model.to(torch.bfloat16)) leaves the uint8 layout, and so the fp32 scales inside it, untouched.
        # A move carries the bytes as they are, in the layout of the kernels they were packed for.
        super()._apply(fn, *args, **kwargs)
        self._repack_if_needed()
        return self

    def _repack_if_needed(self) -> None:
        self._packed_for(backends.for_device(self.packed_weight.device))

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
        device = self.packed_weight.device
        backend = backends.for_device(device, sycl.routing_cpu())
        packed = self._packed_for(backend)
        bias = self.bias
        if not isinstance(x, Tensor) or x.dtype not in ops.ACTIVATION_DTYPES or x.dim() == 0 \
                or x.shape[-1] != self.in_features or x.device != packed.device \
                or (bias is not None and bias.device != packed.device):
            self._explain_bad_input(x)
        if bias is not None and bias.dtype != x.dtype:
            bias = bias.to(x.dtype)
        return self._mode.linear(backend.ops(device), x.contiguous(), packed, self.out_features, self.group_size,
                                 bias)

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
        return self._mode.weights.dequantize(self.canonical(), self.group_size).float()

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}, symmetric={self.symmetric}" if self._mode.grouped else ""
        if getattr(self, "offsets", False):
            group += ", offsets=True"
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"mode={self.mode}{group}")
