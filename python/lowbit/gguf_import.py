"""Import the int4 weights of a GGUF file into a transformers model, as they are: lowbit.load_gguf_.

A GGUF Q4_1 block holds 32 weights as w = d * q + m (fp16 d and m, q in 0..15), Q4_0 as w = d * (q - 8): exactly
lowbit's a16w4 at group size 32, with float offsets (Q4_1) or symmetric (Q4_0). So a model loaded from such a file
(transformers dequantizes it to float) can get back the file's integers, scales and offsets, losslessly, instead
of re-quantizing weights that already sit on a 4-bit grid.

The file is read with the `gguf` package (llama.cpp's reader): its blocks, and its own dequantization, which
also gives the integers (a block whose header says d = 1, m = 0 dequantizes to q itself), so the nibble order is
gguf's, not re-implemented here. GGUF tensor names are mapped to the model's modules, and the rows of the
tensors llama.cpp permuted (attention q/k for rotary embeddings) are put back, with transformers' own GGUF code
(the same mapping and tensor processor from_pretrained(..., gguf_file=...) used).
"""

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor, nn

# GGUF block types imported losslessly, and the header of one block (fp16 fields) before its 16 nibble bytes
_LOSSLESS = {"Q4_0": ("d",), "Q4_1": ("d", "m")}
_BLOCK = 32
# Types without a lossless form, and the lowbit mode nearest in bits when others="quantize"
_NEAREST = {"Q8_0": "a16w8", "Q8_1": "a16w8", "Q6_K": "a16w8", "Q5_0": "a16w8", "Q5_1": "a16w8", "Q5_K": "a16w8",
            "Q4_K": "a16w4", "IQ4_NL": "a16w4", "IQ4_XS": "a16w4", "Q3_K": "a16w4", "Q2_K": "a16w4"}


@dataclass
class LayerImport:
    """What load_gguf_ did with one nn.Linear.

    action: "imported" (the file's int4 integers, scales and offsets, lossless), "quantized" (re-quantized to
    `mode` from the model's float weight: error reported), or "kept" (left a float nn.Linear).
    error: max |w_lowbit - w_gguf| / max |w_gguf| over the layer (0 when kept; fp32 rounding when imported)."""
    module: str
    tensor: Optional[str]
    gguf_type: Optional[str]
    action: str
    mode: Optional[str] = None
    group_size: Optional[int] = None
    error: float = 0.0


def _require_gguf():
    try:
        import gguf  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("lowbit.load_gguf_ needs the `gguf` package (pip install gguf)") from e
    return gguf


def _dequantize(gguf, blocks: np.ndarray, qtype) -> np.ndarray:
    return np.asarray(gguf.quants.dequantize(blocks, qtype), dtype=np.float32)


def read_int4(tensor, gguf=None) -> Dict[str, np.ndarray]:
    """One Q4_0 / Q4_1 tensor of a GGUFReader -> the integers q uint8 [N, K], scales float32 [N, K/32], offsets
    float32 [N, K/32] (Q4_1) or None (Q4_0: w = scale * (q - 8)), and gguf's own dequantization [N, K]."""
    gguf = gguf or _require_gguf()
    kind = tensor.tensor_type.name
    fields = _LOSSLESS[kind]
    raw = np.asarray(tensor.data)  # uint8 [N, bytes per row]
    n, k = int(tensor.shape[1]), int(tensor.shape[0])  # GGUF lists dimensions fastest-first
    header = 2 * len(fields)
    blocks = raw.reshape(n * k // _BLOCK, header + _BLOCK // 2)
    head = blocks[:, :header].copy().view(np.float16).astype(np.float32)  # [blocks, len(fields)]
    # the integers through gguf's own dequantization: d = 1 and m = 0 turn a block into q (Q4_1) or q - 8 (Q4_0)
    unit = blocks.copy()
    unit[:, :header] = np.array([1.0] + [0.0] * (len(fields) - 1), dtype=np.float16).view(np.uint8)
    q = _dequantize(gguf, unit.reshape(raw.shape), tensor.tensor_type).reshape(n, k)
    if kind == "Q4_0":
        q = q + 8
    if q.min() < 0 or q.max() > 15 or not np.array_equal(q, np.round(q)):
        raise ValueError(f"{tensor.name}: gguf's {kind} blocks did not decode to integers in 0..15")
    scales = head[:, 0].reshape(n, k // _BLOCK)
    offsets = head[:, 1].reshape(n, k // _BLOCK) if kind == "Q4_1" else None
    reference = _dequantize(gguf, raw, tensor.tensor_type).reshape(n, k)
    return {"q": q.astype(np.uint8), "scales": scales, "offsets": offsets, "reference": reference}


def _row_order(processor, tensor_name: str, rows: int) -> np.ndarray:
    """The permutation transformers' tensor processor applies to the rows of `tensor_name` (llama.cpp stores
    attention q/k rows interleaved for its rotary embedding): it is applied to the row indices themselves."""
    index = np.arange(rows, dtype=np.int64).reshape(rows, 1)
    out = processor.process(index, tensor_name).weights
    order = np.asarray(out).reshape(rows)
    if sorted(order.tolist()) != list(range(rows)):
        raise ValueError(f"{tensor_name}: transformers' GGUF processor does not just permute its rows")
    return order


def _tensor_map(model: nn.Module, reader):
    """GGUF tensor name -> the model's parameter name, and the tensor processor, as transformers loads them."""
    from transformers.modeling_gguf_pytorch_utils import (TENSOR_PROCESSORS, TensorProcessor,
                                                          get_gguf_hf_weights_map)
    arch = reader.fields.get("general.architecture")
    arch = bytes(arch.parts[arch.data[0]]).decode() if arch is not None else None
    processor = TENSOR_PROCESSORS.get(arch, TensorProcessor)(config=model.config.to_dict())
    return get_gguf_hf_weights_map(model, processor), processor


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _relative_error(w: Tensor, ref: Tensor) -> float:
    scale = ref.abs().max().item()
    return (w.double() - ref.double()).abs().max().item() / (scale if scale > 0 else 1.0)


def load_gguf_(model: nn.Module, path: str, others: str = "keep", group_size: int = 32,
               method: str = "rtn") -> Dict[str, LayerImport]:
    """In place: every nn.Linear of `model` (a transformers model loaded from this GGUF file with
    from_pretrained(dir, gguf_file=name)) whose GGUF tensor is Q4_0 or Q4_1 becomes an a16w4 QuantLinear at group
    size 32 holding exactly the file's integers, scales and offsets (Q4_1: float offsets, Q4_0: symmetric).

    others: what happens to the other linears (their tensor is Q8_0, Q6_K, Q4_K, F16, ..., or a tied lm_head
      stored as the token embedding): "keep" leaves them as they are; "quantize" re-quantizes each to the lowbit
      mode nearest its GGUF type (a16w8 for 5 to 8 bits, a16w4 at `group_size` with float offsets and `method`
      for 2 to 4 bits; F16/BF16/F32 stay) from the model's float weight, and reports the error.
    A tied lm_head stays tied unless re-quantized (others="quantize": it becomes its own a16w8 layer, the
    embedding stays float).
    Returns {module name: LayerImport} for every nn.Linear of the model (lm_head included).
    Raises ValueError when a tensor's shape does not match its module (not the model this file was loaded
    into), and ImportError without the `gguf` package."""
    from lowbit.nn import QuantLinear
    if not isinstance(model, nn.Module) or getattr(model, "config", None) is None:
        raise TypeError("model must be a transformers model loaded from this GGUF file "
                        f"(AutoModelForCausalLM.from_pretrained(dir, gguf_file=name)), got {type(model).__name__}")
    if others not in ("keep", "quantize"):
        raise ValueError(f"others must be 'keep' or 'quantize', got {others!r}")
    gguf = _require_gguf()
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    to_hf, processor = _tensor_map(model, reader)
    from_hf = {hf: g for g, hf in to_hf.items() if g in tensors}
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    report: Dict[str, LayerImport] = {}
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    for name, linear in linears:
        tname = from_hf.get(name + ".weight")
        if tname is None and tied and "token_embd.weight" in tensors and name.endswith("lm_head"):
            tname = "token_embd.weight"  # a tied output layer is stored once, as the embedding
        if tname is None:
            report[name] = LayerImport(name, None, None, "kept")
            continue
        tensor = tensors[tname]
        kind = tensor.tensor_type.name
        n, k = int(tensor.shape[1]) if len(tensor.shape) > 1 else 1, int(tensor.shape[0])
        if (n, k) != (linear.out_features, linear.in_features):
            raise ValueError(f"{tname} has shape [{n}, {k}] but {name} is [{linear.out_features}, "
                             f"{linear.in_features}]: is this the file the model was loaded from?")
        bias = linear.bias.detach() if linear.bias is not None else None
        if kind in _LOSSLESS and tname != "token_embd.weight":
            blocks = read_int4(tensor, gguf)
            order = torch.from_numpy(_row_order(processor, tname, n))
            q = torch.from_numpy(blocks["q"])[order]
            canonical = {"weight": _pack_nibbles(q),
                         "weight_scale": torch.from_numpy(blocks["scales"])[order].contiguous()}
            if blocks["offsets"] is not None:
                canonical["weight_offset"] = torch.from_numpy(blocks["offsets"])[order].contiguous()
            layer = QuantLinear.from_canonical(canonical, "a16w4", _BLOCK, bias=bias,
                                               device=linear.weight.device)
            ref = torch.from_numpy(blocks["reference"])[order]
            report[name] = LayerImport(name, tname, kind, "imported", "a16w4", _BLOCK,
                                       _relative_error(layer.dequantized_weight(), ref))
            _set_module(model, name, layer)
        elif others == "quantize" and kind in _NEAREST:
            mode = _NEAREST[kind]
            ref = linear.weight.detach().float()
            if mode == "a16w4":
                layer = QuantLinear.from_linear(linear, "a16w4", group_size, method=method, offsets=True)
            else:
                layer = QuantLinear.from_linear(linear, mode)
            report[name] = LayerImport(name, tname, kind, "quantized", mode, layer.group_size,
                                       _relative_error(layer.dequantized_weight(), ref))
            _set_module(model, name, layer)
        else:
            report[name] = LayerImport(name, tname, kind, "kept")
    return report


def _pack_nibbles(q: Tensor) -> Tensor:
    from lowbit.formats import pack_int4
    return pack_int4(q)


def summary(report: Dict[str, LayerImport]) -> str:
    """One line per (action, GGUF type): how many layers, and the largest relative error."""
    groups: Dict[tuple, list] = {}
    for r in report.values():
        groups.setdefault((r.action, r.gguf_type or "-", r.mode or "-"), []).append(r.error)
    return "\n".join(f"{action:9s} {kind:6s} -> {mode:6s} {len(errs):4d} layers, max relative error {max(errs):.2e}"
                     for (action, kind, mode), errs in sorted(groups.items()))
