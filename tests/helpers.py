"""Random canonical weights and the error bound the kernels are held to."""

import math

import torch

import lowbit
from lowbit import formats

# Unit roundoff of one rounding to each output dtype (round to nearest even): 2^-(precision bits).
UNIT_ROUNDOFF = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11, torch.float32: 2.0 ** -24}
U32 = 2.0 ** -24


def random_int8(n, k):
    return torch.randint(-127, 128, (n, k), dtype=torch.int8), torch.rand(n) * 0.02 + 0.001


def random_int4(n, k, group_size, symmetric):
    q = torch.randint(0, 16, (n, k), dtype=torch.uint8)
    scales = torch.rand(n, k // group_size) * 0.1 + 0.01
    zeros = None if symmetric else torch.randint(0, 16, (n, k // group_size), dtype=torch.uint8)
    return formats.pack_int4(q), scales, zeros


def random_int4_offsets(n, k, group_size):
    """int4 with float offsets: q in 0..15, scales > 0, offsets about -8 scales as a GGUF Q4_1 minimum is."""
    q = torch.randint(0, 16, (n, k), dtype=torch.uint8)
    scales = torch.rand(n, k // group_size) * 0.1 + 0.01
    offsets = -scales * (torch.rand(n, k // group_size) * 10 + 3)
    return formats.pack_int4(q), scales, offsets


def int4_fold_magnitude(packed, scales, zeros, group_size):
    """|w| as the kernels see it: they compute scale * (x . q - zero * sum(x)), whose rounding errors scale with
    (q + zero) * scale rather than |q - zero| * scale; the bf16 decode kernel (avx512_bf16) multiplies
    1 + q/16 (a nibble made bf16 by bit operations) and computes scale * (16 * x . (1 + q/16) - (16 + zero) *
    sum(x)), whose rounding errors scale with (32 + q + zero) * scale. The larger of the two is used."""
    q = formats.unpack_int4(packed).double()
    n, k = q.shape
    if zeros is not None and zeros.is_floating_point():  # float offsets: scale * (x . q) + offset * sum(x)
        per_group = (q.reshape(n, -1, group_size) + 32) * scales.double()[..., None] + zeros.double().abs()[..., None]
        return per_group.reshape(n, k)
    z = zeros.double() if zeros is not None else torch.full_like(scales, 8, dtype=torch.float64)
    return ((q.reshape(n, -1, group_size) + z[..., None] + 32) * scales.double()[..., None]).reshape(n, k)


def assert_close_a16(out, ref64, x, w64, bias):
    """Kernels accumulate in fp32, then round once to the output dtype.

    - accumulation: the rounding errors of a K-term fp32 sum are random in sign, so they grow like sqrt(K);
      4 * sqrt(K) * u32 * sum_k |x_k w_k| bounds them with a wide margin (the worst case K * u32 is never
      approached by random data), and it is still far below one missing or doubled term (about
      sum|x w| / K for K <= 16384), so a wrong index fails.
    - the final rounding to the output dtype: UNIT_ROUNDOFF[dtype] * |y|, plus the fp32 bias addition.
    """
    k = x.shape[-1]
    absdot = x.double().abs() @ w64.abs().T
    if bias is not None:
        absdot = absdot + bias.double().abs()
    tol = UNIT_ROUNDOFF[out.dtype] * ref64.abs() + 4 * math.sqrt(k) * U32 * absdot + 1e-30
    err = (out.double() - ref64).abs()
    bad = ~(err <= tol)  # NaN (an unwritten, poisoned element) counts as bad
    assert not bad.any(), (f"{int(bad.sum())} of {out.numel()} elements off; worst err {err.max().item():.3e}, "
                           f"tol there {tol.flatten()[err.flatten().argmax()].item():.3e}")


def da8w8_magnitude(x, q, scales, bias):
    """|acc| * x_scale * w_scale (+ |bias|): the size of the terms da8w8's fp32 epilogue rounds."""
    from lowbit import reference

    xq, xs = reference.quantize_activation_per_token(x)
    magnitude = (xq.double().abs() @ q.double().abs().T) * xs.double()[..., None] * scales.double()
    return magnitude if bias is None else magnitude + bias.double().abs()


def assert_close_da8w8(out, ref64, bias, magnitude64):
    """The int32 accumulator is exact; the epilogue float(acc) * x_scale * w_scale + bias costs at most
    four fp32 roundings (4 * u32 of the terms' magnitude), then one rounding to the output dtype."""
    tol = UNIT_ROUNDOFF[out.dtype] * ref64.abs() + 4 * U32 * magnitude64 + 1e-30
    err = (out.double() - ref64).abs()
    bad = ~(err <= tol)
    assert not bad.any(), f"{int(bad.sum())} of {out.numel()} elements off; worst err {err.max().item():.3e}"


def isa():
    return lowbit.cpu_isa()


def da8w4_magnitude(x, packed, scales, zeros, group_size, bias):
    """|x_scale| * sum_G |s_G * d_G| (+ |bias|), d_G the exact integer group sums: the size of the terms da8w4's fp32
    epilogue rounds (every kernel forms d_G in int32 before any float operation)."""
    from lowbit import reference

    xq, xs = reference.quantize_activation_per_token(reference.activations(x))
    q = formats.unpack_int4(packed).double()
    n, k = q.shape
    groups = k // group_size
    z = zeros.double() if zeros is not None else torch.full_like(scales, 8, dtype=torch.float64)
    w = q.reshape(n, groups, group_size) - z[..., None]
    d = torch.einsum("mgk,ngk->mng", xq.double().reshape(-1, groups, group_size), w)  # exact: below 2^53
    magnitude = (d * scales.double()).abs().sum(-1) * xs.double().abs().reshape(-1, 1)
    magnitude = magnitude.reshape(*x.shape[:-1], n)
    return magnitude if bias is None else magnitude + bias.double().abs()


def sycl_cpu_device():
    """(the SYCL CPU device's name, "") or (None, why) when the SYCL path cannot run here."""
    if not lowbit.sycl.available():
        return None, lowbit.sycl.unavailable_reason()
    try:
        return lowbit.sycl.cpu_device(), ""
    except RuntimeError as e:
        return None, str(e)


def assert_close_da8w4(out, ref64, bias, magnitude64, k):
    """The int32 group sums are exact; the epilogue sums K/g products scale * sum in fp32 (at most K/g - 1
    roundings of partial sums, in any order), multiplies by the row's scale, adds the bias (three more roundings,
    and one for a group sum above 2^24 made float): (K/g + 4) * u32 of the terms' magnitude; then one rounding to
    the output dtype. `k` is the number of groups K/g."""
    tol = UNIT_ROUNDOFF[out.dtype] * ref64.abs() + (k + 4) * U32 * magnitude64 + 1e-30
    err = (out.double() - ref64).abs()
    bad = ~(err <= tol)
    assert not bad.any(), f"{int(bad.sum())} of {out.numel()} elements off; worst err {err.max().item():.3e}"
