"""No leaks: quantize -> pack -> linear repeated a thousand times (every mode, through the wrappers,
the ops and QuantLinear) keeps the process's resident memory flat.

Every buffer a round allocates in the ops (packed weights, the fp32 copy of x, the int8 activations, the
outputs) is 16 KiB or more, so leaking any one of them would add at least 15.6 MiB over the measured rounds:
twice the allowed growth, which itself is far above what the allocators settle to after the warm-up (0.0 MiB
measured here over 1500 rounds).
"""

import gc
import os

import torch
from torch import nn

import lowbit
from lowbit import formats, ops

K, N, M, G = 256, 128, 64, 64
WARMUP, ROUNDS = 100, 1000
ALLOWED_GROWTH = 8 * 2 ** 20


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _round(w, x, layer):
    q8, s8 = formats.quantize_int8(w)
    q4, s4, z4 = formats.quantize_int4(w, G)
    ops.linear_a16w8(x, ops.pack_a16w8(q8, s8), N)                                # 34 KiB packed, 64 KiB x in fp32
    ops.linear_da8w8(x, ops.pack_da8w8(q8, s8), N)                                # 16 KiB int8 activations
    torch.ops.lowbit.linear_a16w4(x, ops.pack_a16w4(q4, s4, z4, G), N, G, None)  # 20 KiB packed, 16 KiB output
    ops.linear_da8w4(x, ops.pack_da8w4(q4, s4, z4, G), N, G)                      # int8 x and its group sums
    layer(x[:1])                                                                  # the decode path
    layer.load_state_dict(layer.state_dict())                                     # a repack


def test_repeated_calls_keep_resident_memory_flat():
    torch.manual_seed(6)
    w = torch.randn(N, K)
    x = torch.randn(M, K, dtype=torch.bfloat16)
    layer = lowbit.QuantLinear.from_linear(nn.Linear(K, N, dtype=torch.bfloat16), "a16w4", group_size=G)
    with torch.no_grad():
        for _ in range(WARMUP):
            _round(w, x, layer)
        gc.collect()
        before = _rss_bytes()
        for _ in range(ROUNDS):
            _round(w, x, layer)
        gc.collect()
        growth = _rss_bytes() - before
    print(f"resident memory growth over {ROUNDS} rounds: {growth / 2 ** 20:.2f} MiB")
    assert growth < ALLOWED_GROWTH, f"resident memory grew by {growth / 2 ** 20:.1f} MiB over {ROUNDS} rounds"


def test_sycl_calls_keep_resident_memory_flat():
    """The SYCL path: its kernel cache holds one entry per (context, device, source, kernel), so cycling
    through every dtype and both launch paths must stop allocating once each kernel has been built."""
    if not lowbit.sycl.available():
        import pytest
        pytest.skip(f"SYCL path unavailable: {lowbit.sycl.unavailable_reason()} (tests/test_sycl.py guards CI)")
    torch.manual_seed(7)
    w = torch.randn(N, K)
    q8, s8 = formats.quantize_int8(w)
    q4, s4, z4 = formats.quantize_int4(w, G)
    xs = [torch.randn(m, K, dtype=dt) for m in (1, 33) for dt in (torch.bfloat16, torch.float16, torch.float32)]

    def sycl_round():
        for x in xs:
            ops.linear_a16w8(x, ops.pack_a16w8(q8, s8), N)
            ops.linear_da8w8(x, ops.pack_da8w8(q8, s8), N)
            ops.linear_da8w4(x, ops.pack_da8w4(q4, s4, z4, G), N, G)

    with lowbit.sycl.route_cpu(), torch.no_grad():
        for _ in range(10):
            sycl_round()
        gc.collect()
        before = _rss_bytes()
        for _ in range(150):
            sycl_round()
        gc.collect()
        growth = _rss_bytes() - before
    print(f"resident memory growth over 150 SYCL rounds: {growth / 2 ** 20:.2f} MiB")
    # 150 rounds x 18 calls, each packing >= 16 KiB of weights: leaking those alone would
    # add >= 28 MiB (a kernel-cache entry per call, far more)
    assert growth < ALLOWED_GROWTH, f"resident memory grew by {growth / 2 ** 20:.1f} MiB over 150 SYCL rounds"
