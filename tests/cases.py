"""Random weights, op calls, references and tolerances for any mode of lowbit.modes, so that one test covers
every mode (a new mode's entry in the table puts it through them)."""

from typing import Dict, Optional

import torch

import lowbit
from helpers import (assert_close_a16, assert_close_da8w4, assert_close_da8w8, da8w4_magnitude, da8w8_magnitude,
                     int4_fold_magnitude, random_int4, random_int8)
from lowbit import modes, ops, reference

MODES = lowbit.MODES
INT4_MODES = tuple(m for m in MODES if modes.get(m).grouped)
INT8_MODES = tuple(m for m in MODES if not modes.get(m).grouped)


def random_weights(mode, n: int, k: int, group_size: Optional[int] = None,
                   symmetric: bool = False) -> Dict[str, Optional[torch.Tensor]]:
    """Random canonical tensors (state_dict names) of `mode` for an [n, k] weight: every value of the range."""
    if modes.get(mode).grouped:
        q, s, z = random_int4(n, k, group_size, symmetric)
        return {"weight": q, "weight_scale": s, "weight_zero": z}
    q, s = random_int8(n, k)
    return {"weight": q, "weight_scale": s}


def pack(mode, canonical, group_size=None):
    mode = modes.get(mode)
    return ops.pack(mode, *mode.weights.pack_args(canonical, group_size))


def linear(mode, x, packed, n, group_size=None, bias=None):
    return ops.linear(mode, x, packed, n, group_size, bias)


def check(mode, out, x, canonical, group_size=None, bias=None) -> None:
    """out against the mode's reference, within the tolerance its arithmetic allows (tests/helpers.py)."""
    mode = modes.get(mode)
    ref = mode.reference(x, canonical, group_size, bias, torch.float64)
    xa = reference.activations(x)
    q, s, z = canonical["weight"], canonical["weight_scale"], canonical.get("weight_zero")
    if not mode.dynamic_activations:
        w = (reference.dequantize_int8(q, s) if not mode.grouped else int4_fold_magnitude(q, s, z, group_size))
        assert_close_a16(out, ref, xa, w, bias)
    elif not mode.grouped:
        assert_close_da8w8(out, ref, bias, da8w8_magnitude(xa, q, s, bias))
    else:
        assert_close_da8w4(out, ref, bias, da8w4_magnitude(xa, q, s, z, group_size, bias), k=x.shape[-1] // group_size)


def shapes(mode):
    """(K, group_size) cases of a mode: int8 with K not a multiple of 4; int4 with every usual group size and
    per channel (group_size None -> K)."""
    if not modes.get(mode).grouped:
        return [(64, None), (200, None), (203, None)]
    return [(512, 32), (512, 64), (512, 128), (768, 256), (512, None)]
