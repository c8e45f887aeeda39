"""Int4 groups scaled by powers of two, exactly, while their scales are chosen (formats.quantize_int4, hqq_method).

A group of weights is scaled so that its amax is in [0.5, 1) before a quantizer sees it, and its scale (and offset)
multiplied back after. Rounding commutes with powers of two, so for weights of ordinary size no bit of the result
changes; at the edges of the float range every intermediate stays finite (max - min of a group holding -3e38 and
3e38) and away from subnormals, so every finite weight gets a finite scale.

(The error-minimizing clipped-range search that lived here as method="search" was removed: on SmolLM2-135M it
raised perplexity more than round to nearest did, 1.677x against 1.499x at g = 64; README, "A real model".)
"""

from typing import Tuple

import torch
from torch import Tensor


def times_power_of_two(t: Tensor, e: Tensor) -> Tensor:
    """t * 2^e (e an integer tensor, |e| <= 300), in two multiplications by normal float32 powers of two, so it is
    exact wherever the result is a normal float (2^e itself may be out of float32's range)."""
    e1 = torch.div(e, 2, rounding_mode="floor")
    return t * torch.exp2(e1.float()) * torch.exp2((e - e1).float())


def normalize_groups(w: Tensor) -> Tuple[Tensor, Tensor]:
    """w [..., g] float32 -> (w * 2^-e, e): each group scaled by a power of two so that its amax is in [0.5, 1)
    (e int [..., 1]; 0 for an all-zero group).

    The quantizers work on the scaled groups and multiply the scales back by 2^e. Rounding commutes with powers of
    two, so for weights of ordinary size this changes no bit of the result; at the edges of the float range it
    keeps every intermediate finite (max - min of a group holding -3e38 and 3e38, the squared errors of the
    search) and away from subnormals, so every finite weight gets a finite scale."""
    amax = w.abs().amax(dim=-1, keepdim=True)
    e = torch.where(amax > 0, torch.frexp(amax).exponent, 0)
    return times_power_of_two(w, -e), e


def scale_back(q: Tensor, scale: Tensor, e: Tensor, zero) -> Tuple[Tensor, Tensor]:
    """The scales of normalized groups times 2^e. A scale that underflows to 0 (a group of weights below about
    1e-44) becomes 1 with every q at the zero point, so the group dequantizes to 0, as an all-zero group does."""
    scale = times_power_of_two(scale, e)
    vanished = scale == 0
    return torch.where(vanished, zero, q), torch.where(vanished, torch.ones_like(scale), scale)
