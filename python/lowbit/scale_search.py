"""Int4 scales and zero points chosen per group to minimize the weight reconstruction error (method="search").

Round to nearest (formats.quantize_int4) maps each group's [min, max] onto the 16 levels. One large weight then
stretches the step for all the others, and the integer zero point (the format stores zeros as uint8 0..15) adds a
rounding of its own. Here, with no calibration data, every group tries a set of clipped ranges
[a * min, a * max] (a in DEFAULT_SHRINK), quantizes with each, refits the scale by least squares for the integers it
got (for fixed q and z, the scale minimizing sum (s * (q - z) - w)^2 is sum(w * (q - z)) / sum((q - z)^2)), and
keeps the candidate with the smallest squared error. The result is in the same canonical format as round to nearest, so
kernels, packing and serialization are unchanged; only quantize time grows (see docs/benchmarks.md, "Accuracy").

The squared weight error is what the search can minimize without data: it is the output error for inputs whose
channels are uncorrelated with equal variance. Real activations are not like that, which bounds what any
weight-only search can recover (docs/benchmarks.md gives the numbers).
"""

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

INT4_LEVELS = 16
INT4_MAX = INT4_LEVELS - 1
# Clipping factors tried for a group's range. Below about 0.6 the clipped weights' error outgrows what the finer
# step saves; clipping the two ends independently (a 2-D grid, 9x the work) or a finer step gained nothing on
# all-MiniLM-L6-v2 (docs/benchmarks.md, "Accuracy").
DEFAULT_SHRINK = tuple(1.0 - 0.05 * i for i in range(9))
# Groups processed at once: bounds the temporaries to a few times GROUPS_PER_CHUNK * group_size floats.
GROUPS_PER_CHUNK = 1 << 15


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


def _asymmetric(w: Tensor, shrink: Sequence[float]) -> Tuple[Tensor, Tensor, Tensor]:
    """w [G, g] float32 -> q [G, g] (float, 0..15), scale [G, 1], zero [G, 1] (float, integral 0..15)."""
    lo = w.amin(dim=-1, keepdim=True).clamp(max=0.0)  # the zero point must stay in 0..15, so 0 is in range
    hi = w.amax(dim=-1, keepdim=True).clamp(min=0.0)
    best_err = torch.full_like(lo, float("inf"))
    best_scale, best_zero = torch.ones_like(lo), torch.zeros_like(lo)
    for a in shrink:
        scale = (a * (hi - lo) / INT4_MAX).clamp(min=torch.finfo(torch.float32).tiny)
        zero = torch.round(-a * lo / scale).clamp(0, INT4_MAX)
        d = (torch.round(w / scale) + zero).clamp(0, INT4_MAX) - zero
        scale = _refit(w, d, scale)
        d = (torch.round(w / scale) + zero).clamp(0, INT4_MAX) - zero
        err = (d * scale - w).square().sum(dim=-1, keepdim=True)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_scale = torch.where(better, scale, best_scale)
        best_zero = torch.where(better, zero, best_zero)
    q = (torch.round(w / best_scale) + best_zero).clamp(0, INT4_MAX)
    return q, best_scale, best_zero


def _symmetric(w: Tensor, shrink: Sequence[float]) -> Tuple[Tensor, Tensor]:
    """w [G, g] -> q [G, g] (float, 0..15 with zero point 8), scale [G, 1]."""
    amax = w.abs().amax(dim=-1, keepdim=True)
    best_err = torch.full_like(amax, float("inf"))
    best_scale = torch.ones_like(amax)
    for a in shrink:
        scale = (a * amax / 7.0).clamp(min=torch.finfo(torch.float32).tiny)
        d = torch.round(w / scale).clamp(-8, 7)
        scale = _refit(w, d, scale)
        d = torch.round(w / scale).clamp(-8, 7)
        err = (d * scale - w).square().sum(dim=-1, keepdim=True)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_scale = torch.where(better, scale, best_scale)
    q = torch.round(w / best_scale).clamp(-8, 7) + 8
    return q, best_scale


def _refit(w: Tensor, d: Tensor, scale: Tensor) -> Tensor:
    """Least-squares scale for fixed integers d = q - z; keeps the old scale where d is all zero."""
    num = (w * d).sum(dim=-1, keepdim=True)
    den = (d * d).sum(dim=-1, keepdim=True)
    fitted = num / den.clamp(min=1.0)
    return torch.where((den > 0) & (fitted > 0), fitted, scale)


@torch.no_grad()
def search_int4(weight: Tensor, group_size: int, symmetric: bool = False,
                shrink: Optional[Sequence[float]] = None) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """weight [N, K] float -> (q uint8 [N, K] in 0..15, scales float32 [N, K/g], zeros uint8 [N, K/g] or None).

    The caller (formats.quantize_int4) has checked the shape; `shrink` overrides DEFAULT_SHRINK.
    """
    shrink = tuple(DEFAULT_SHRINK if shrink is None else shrink)
    if not shrink or any(not 0.0 < a <= 1.0 for a in shrink):
        raise ValueError(f"shrink factors must be in (0, 1], got {shrink}")
    N, K = weight.shape
    groups = weight.reshape(-1, group_size)
    q = torch.empty(groups.shape, dtype=torch.uint8, device=weight.device)
    scales = torch.empty(groups.shape[0], dtype=torch.float32, device=weight.device)
    zeros = None if symmetric else torch.empty(groups.shape[0], dtype=torch.uint8, device=weight.device)
    for start in range(0, groups.shape[0], GROUPS_PER_CHUNK):
        sl = slice(start, start + GROUPS_PER_CHUNK)
        w, e = normalize_groups(groups[sl].float())
        if symmetric:
            qc, sc = _symmetric(w, shrink)
            qc, sc = scale_back(qc, sc, e, torch.full_like(sc, 8.0))
        else:
            qc, sc, zc = _asymmetric(w, shrink)
            qc, sc = scale_back(qc, sc, e, zc)
            zeros[sl] = zc.squeeze(-1).to(torch.uint8)
        q[sl] = qc.to(torch.uint8)
        scales[sl] = sc.squeeze(-1)
    groups_per_row = K // group_size
    return (q.reshape(N, K), scales.reshape(N, groups_per_row),
            None if zeros is None else zeros.reshape(N, groups_per_row))
