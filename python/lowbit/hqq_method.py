"""method="hqq": data-free, error-minimizing int4 scales and offsets, through the `hqq` package's optimizer.

Half-Quadratic Quantization (Badri & Shaji, 2023; the `hqq` package) fits, per group, the offset that minimizes an
l_p error (p < 1, which lets a few outlying weights keep a large error while the bulk fits closely) for a scale
fixed by the group's range, with a proximal solver: no calibration data, a few iterations per layer. Its default
call stops early on the error summed over the whole tensor and keeps the min-max scale. Here:
  1. HQQ's solver (hqq.core.optimize.optimize_weights_proximal_v2) runs without the global early stop, with
     HQQ_PARAMS, for the offsets (its "zero" in w = (q - zero) / scale_inv);
  2. then, per group, least-squares refits: for the integers q it chose, the (scale, offset) minimizing
     sum (scale * q + offset - w)^2 is a linear regression; q is re-rounded and the refit repeated REFITS times,
     a group keeping whichever candidate (HQQ's or a refit) has the smallest squared error.
With float offsets (a16w4 offsets=True) the result is stored as it is; with integer zero points the offset is
rounded to zero = round(-offset / scale) in 0..15 before q is re-rounded (the form loses some of what HQQ found).

What HQQ's step does here: its shrinkage keeps a residual r only where |r|^(2-p) > 1/beta, |r| > 0.17 with the
defaults (p = 0.7, beta = 10), while on groups normalized to amax in [0.5, 1) no residual exceeds half a step,
2/30. So every residual is shrunk to zero and each iteration is: round q for the current offset, then the
least-squares offset for those q at the min-max scale; the refits then fit the scale too. (Measured on SmolLM2 at
g = 64: HQQ's default call 1.2375x on the block linears, 40 iterations without early stop 1.2404x, p = 1 the
same; a data-free weighting of the error by the preceding RMSNorm's gain squared reached 1.222x, not adopted.)

What it gives on SmolLM2-135M is measured by lowbit.real_model (README, "The main job").
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from lowbit.int4_groups import normalize_groups, scale_back, times_power_of_two

INT4_MAX = 15
# hqq's solver parameters (its defaults: lp_norm 0.7, beta 10, kappa 1.01, iters 20, early stop on)
HQQ_PARAMS = {"lp_norm": 0.7, "beta": 1e1, "kappa": 1.01, "iters": 40, "tol": 0.0, "early_stop": False,
              "scale_gridsearch": False}
REFITS = 4
# groups per call of the solver: bounds its temporaries
GROUPS_PER_CHUNK = 1 << 16


def _require_hqq():
    try:
        from hqq.core.optimize import optimize_weights_proximal_v2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError('method="hqq" needs the `hqq` package (pip install hqq)') from e
    return optimize_weights_proximal_v2


def _sq_error(w: Tensor, q: Tensor, s: Tensor, o: Tensor) -> Tensor:
    return (s * q + o - w).square().sum(dim=-1, keepdim=True)


def _refit(w: Tensor, q: Tensor) -> Tuple[Tensor, Tensor]:
    """Least-squares (scale, offset) for fixed integers q: a linear regression of w on q, per group. A group
    whose q are all equal gets scale 0 from it (then its offset is the mean): kept positive by the caller."""
    qm, wm = q.mean(dim=-1, keepdim=True), w.mean(dim=-1, keepdim=True)
    dq = q - qm
    var = dq.square().sum(dim=-1, keepdim=True)
    s = torch.where(var > 0, (dq * (w - wm)).sum(dim=-1, keepdim=True) / var.clamp(min=1e-30), torch.zeros_like(var))
    return s, wm - s * qm


def _fit_groups(w: Tensor, params: dict, refits: int) -> Tuple[Tensor, Tensor, Tensor]:
    """w [G, g] float32, each group's amax in [0.5, 1) -> q [G, g] (float 0..15), scale [G, 1] > 0, offset [G, 1]."""
    solve = _require_hqq()
    lo, hi = w.amin(dim=-1, keepdim=True), w.amax(dim=-1, keepdim=True)
    step = ((hi - lo) / INT4_MAX).clamp(min=1e-8)
    # hqq's convention: q = round(w * scale_inv + zero), w ~ (q - zero) / scale_inv
    q, scale_inv, zero = solve(w, 1.0 / step, -lo / step, [0, INT4_MAX], axis=1, device=w.device,
                               dtype=torch.float32, opt_params=dict(params))
    s, o = 1.0 / scale_inv, -zero / scale_inv
    q = torch.round((w - o) / s).clamp(0, INT4_MAX)
    best = (q, s, o, _sq_error(w, q, s, o))
    for _ in range(refits):
        s2, o2 = _refit(w, best[0])
        s2 = torch.where(s2 > 0, s2, step)
        q2 = torch.round((w - o2) / s2).clamp(0, INT4_MAX)
        s2, o2 = _refit(w, q2)
        s2 = torch.where(s2 > 0, s2, step)
        err = _sq_error(w, q2, s2, o2)
        better = err < best[3]
        best = tuple(torch.where(better, new, old) for new, old in zip((q2, s2, o2, err), best))
    return best[0], best[1], best[2]


def hqq_int4(weight: Tensor, group_size: int, symmetric: bool = False, offsets: bool = True,
             params: Optional[dict] = None, refits: int = REFITS) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """weight [N, K] float -> (q uint8 [N, K] in 0..15, scales float32 [N, K/g], offsets float32 [N, K/g] when
    `offsets`, else uint8 zero points [N, K/g]). Symmetric int4 has no offset to optimize: ValueError.
    ImportError without the `hqq` package."""
    if symmetric:
        raise ValueError('method="hqq" fits offsets (asymmetric int4): it does not apply to symmetric=True')
    params = {**HQQ_PARAMS, **(params or {})}
    n, k = weight.shape
    g = group_size
    # power-of-two normalization per group (exact), as round to nearest does: the solver's constants (its
    # minimum step, the lp shrinkage threshold 1/beta) then mean the same for every layer's magnitude
    w, e = normalize_groups(weight.float().reshape(n * k // g, g))
    qs, ss, os_ = [], [], []
    for c in range(0, w.shape[0], GROUPS_PER_CHUNK):
        q, s, o = _fit_groups(w[c:c + GROUPS_PER_CHUNK], params, refits)
        qs.append(q), ss.append(s), os_.append(o)
    q, s, o = torch.cat(qs), torch.cat(ss), torch.cat(os_)
    if not offsets:
        zero = torch.round(-o / s).clamp(0, INT4_MAX)
        q = (torch.round(w / s) + zero).clamp(0, INT4_MAX)
        q, s = scale_back(q, s, e, zero)
        return (q.reshape(n, k).to(torch.uint8), s.reshape(n, k // g).contiguous(),
                zero.reshape(n, k // g).to(torch.uint8).contiguous())
    q, s = scale_back(q, s, e, torch.zeros_like(q))
    o = times_power_of_two(o, e)
    return q.reshape(n, k).to(torch.uint8), s.reshape(n, k // g).contiguous(), o.reshape(n, k // g).contiguous()
