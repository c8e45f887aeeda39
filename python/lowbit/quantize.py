"""quantize_: swap a model's nn.Linear modules for QuantLinear, in place."""

import logging
from typing import Callable, Dict, Optional

from torch import nn

from lowbit import formats, modes
from lowbit.nn import MODES, QuantLinear

log = logging.getLogger("lowbit")

# Hooks a replaced layer passes on to its QuantLinear: the same dicts, so the handles the user holds still remove them.
_CARRIED_HOOKS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
                  "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_backward_pre_hooks",
                  "_backward_hooks", "_is_full_backward_hook")
# Hooks on the state_dict of nn.Linear's own keys, which QuantLinear does not have: not carried, but logged.
_STATE_DICT_HOOKS = ("_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                     "_load_state_dict_post_hooks")


def check_group_size(group_size, mode="a16w4") -> None:
    """None or -1 (one group per output channel) or a positive int that is a multiple of what the mode's kernels
    need (even for a16w4, a multiple of 8 for da8w4); ValueError otherwise. int8 modes ignore it."""
    mode = modes.get(mode)
    if group_size is None or group_size == -1 and type(group_size) is int:
        return
    m = mode.group_multiple if mode.grouped else 2
    if type(group_size) is int and group_size > 0 and group_size % m == 0:
        return
    what = "even int" if m == 2 else f"multiple of {m}"
    raise ValueError(f"group_size must be None or -1 (per channel) or a positive {what} for {mode.name}, got "
                     f"{group_size!r}")


def _unsupported(linear: nn.Linear, mode: modes.Mode, group_size: Optional[int]) -> Optional[str]:
    """Why this layer cannot take the mode, or None."""
    k = linear.in_features
    return mode.group_size_error(k, formats.resolve_group_size(k, group_size)) or mode.k_error(k)


def _carry_hooks(old: nn.Module, new: nn.Module, fqn: str) -> None:
    for name in _CARRIED_HOOKS:
        if hasattr(old, name):
            setattr(new, name, getattr(old, name))
    dropped = [name for name in _STATE_DICT_HOOKS if getattr(old, name, None)]
    if dropped:
        log.warning("lowbit: %s had %s hooks for nn.Linear's state_dict keys; its QuantLinear does not carry them",
                    fqn, ", ".join(dropped))


def quantize_(model: nn.Module, mode: str, group_size: Optional[int] = 128, symmetric: bool = False,
              filter_fn: Optional[Callable[[nn.Module, str], bool]] = None, method: str = "rtn",
              offsets: bool = False) -> nn.Module:
    """Replace every nn.Linear in `model` (for which filter_fn(module, fqn) is true) by QuantLinear.

    mode: a name in lowbit.MODES ("a16w8", "a16w4", "da8w8", "da8w4"; lowbit.modes describes each).
    group_size: the int4 modes' group size (a16w4: a positive even int; da8w4: a positive multiple of 8), or None /
      -1 for one group per output channel.
    method: "rtn" (round to nearest) or "hqq" (a16w4: HQQ's optimizer then least-squares refits, no calibration
    data; lowbit.hqq_method, needs the `hqq` package).
    offsets: a16w4 with float offsets (w = scale * q + offset) instead of uint8 zero points.

    - A layer used in several places (Sequential(lin, act, lin), or self.b = self.a) becomes one QuantLinear in
      all of them; filter_fn sees it once, under the first name named_modules() gives it.
    - Forward and backward hooks registered on a replaced layer move to its QuantLinear (their handles still work).
    - On a model built on the meta device, the QuantLinear layers are made on meta too (nothing to quantize),
      ready for load_state_dict(quantized_state_dict, assign=True).
    - Left as they are, with the reason logged on the "lowbit" logger: layers whose shape the mode cannot take
      (e.g. a16w4 with in_features not divisible by group_size, or da8w8 with K above its int32 bound), and subclasses of nn.Linear (their forward may
      compute more than x @ W.T + b; QuantLinear.from_linear takes one explicitly).
    Returns the model.
    """
    mode = modes.get(mode).name
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_group_size(group_size, mode)
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be a bool, got {type(symmetric).__name__}")
    if filter_fn is not None and not callable(filter_fn):
        raise TypeError(f"filter_fn must be callable (module, fqn) -> bool, got {type(filter_fn).__name__}")
    formats.check_int4_method(method)
    if not isinstance(offsets, bool):
        raise TypeError(f"offsets must be a bool, got {type(offsets).__name__}")
    if offsets:
        reason = modes.get(mode).offsets_error(symmetric)
        if reason:
            raise ValueError(reason)
    if isinstance(model, nn.Linear):
        raise ValueError("model is itself an nn.Linear: use QuantLinear.from_linear(model, mode) instead")

    replacement: Dict[int, nn.Module] = {}  # id(linear) -> its QuantLinear, decided once per module object
    for fqn, m in model.named_modules():  # each module once, under its first name
        if not isinstance(m, nn.Linear) or (filter_fn is not None and not filter_fn(m, fqn)):
            continue
        if type(m) is not nn.Linear:
            log.warning("lowbit: keeping %s as %s (%s): quantize_ replaces nn.Linear itself, not its subclasses, "
                        "whose forward may compute more than x @ W.T + b; QuantLinear.from_linear takes one explicitly",
                        fqn, type(m).__name__, mode)
            continue
        reason = _unsupported(m, modes.get(mode), group_size)
        if reason:
            log.warning("lowbit: keeping %s as nn.Linear (%s): %s", fqn, mode, reason)
            continue
        q = QuantLinear.from_linear(m, mode, group_size, symmetric, method, offsets=offsets)
        _carry_hooks(m, q, fqn)
        replacement[id(m)] = q

    # every reference to a replaced layer, in every parent (a parent shared between places is visited once)
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if child is not None and id(child) in replacement:
                setattr(parent, name, replacement[id(child)])
    return model
