"""quantize_: swap a model's nn.Linear modules for QuantLinear, in place."""

import logging
from typing import Callable, Optional

from torch import nn

from lowbit import formats
from lowbit.nn import MODES, QuantLinear

log = logging.getLogger("lowbit")


def _unsupported(linear: nn.Linear, mode: str, group_size: Optional[int]) -> Optional[str]:
    """Why this layer cannot take the mode, or None."""
    if mode != "a16w4":
        return None
    try:
        formats.check_int4_shape(linear.in_features, formats.resolve_group_size(linear.in_features, group_size))
    except ValueError as e:
        return str(e)
    return None


def quantize_(model: nn.Module, mode: str, group_size: Optional[int] = 128, symmetric: bool = False,
              filter_fn: Optional[Callable[[nn.Module, str], bool]] = None, method: str = "rtn") -> nn.Module:
    """Replace every nn.Linear in `model` (for which filter_fn(module, fqn) is true) by QuantLinear.

    method: "rtn" (round to nearest) or "search" (a16w4: per-group scales and zeros minimizing the weight
    error, no calibration data; see lowbit.scale_search).

    Layers whose shape the mode cannot take (e.g. a16w4 with in_features not divisible by group_size) are
    left as they are, with the reason logged on the "lowbit" logger. Returns the model.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    formats.check_int4_method(method)
    targets = [(fqn, m) for fqn, m in model.named_modules()
               if type(m) is nn.Linear and (filter_fn is None or filter_fn(m, fqn))]
    if targets and targets[0][0] == "":
        raise ValueError("model is itself an nn.Linear: use QuantLinear.from_linear(model, mode) instead")
    for fqn, linear in targets:
        reason = _unsupported(linear, mode, group_size)
        if reason:
            log.warning("lowbit: keeping %s as nn.Linear (%s): %s", fqn, mode, reason)
            continue
        parent_name, _, child = fqn.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, QuantLinear.from_linear(linear, mode, group_size, symmetric, method))
    return model
