"""Concurrent calls: many Python threads at once on shared packed weights (the ops release the GIL, so the calls
really overlap in the kernels and in ATen's thread pool), and calls while torch.set_num_threads changes.

Every output element is computed by one fixed sequence of operations whatever the thread split (a thread owns
whole 16-column panels and whole rows), so the results must equal the serial ones bit for bit.
"""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

import cases
import lowbit
from helpers import random_int4, random_int8
from lowbit import ops

K, N, G = 256, 72, 64
THREADS = 8


@pytest.fixture(scope="module")
def calls():
    """(name, zero-argument call) pairs: every mode, decode and tiled row counts, every activation dtype."""
    torch.manual_seed(5)
    q8, s8 = random_int8(N, K)
    q4, s4, z4 = random_int4(N, K, G, False)
    p4 = ops.pack_a16w4(q4, s4, z4, G)
    weights = {m: cases.random_weights(m, N, K, G if m in cases.INT4_MODES else None) for m in cases.MODES}
    packed = {m: cases.pack(m, w, G if m in cases.INT4_MODES else None) for m, w in weights.items()}
    layer = lowbit.QuantLinear.from_linear(nn.Linear(K, N), "a16w4", group_size=G).to(torch.bfloat16)
    out = []
    for i, (m, dtype) in enumerate([(1, torch.bfloat16), (3, torch.float16), (17, torch.float32),
                                    (64, torch.bfloat16), (130, torch.float16)]):
        x = torch.randn(m, K, dtype=dtype)
        b = torch.randn(N, dtype=dtype)
        out += [(f"{mode} m={m}", lambda x=x, b=b, mode=mode: cases.linear(
                    mode, x, packed[mode], N, G if mode in cases.INT4_MODES else None, b if i % 2 else None))
                for mode in cases.MODES]
        out.append((f"op a16w4 m={m}", lambda x=x: torch.ops.lowbit.linear_a16w4(x, p4, N, G, None)))
        if dtype == torch.bfloat16:
            out.append((f"QuantLinear m={m}", lambda x=x: layer(x)))
    # packing in threads too: the same canonical weights give the same bytes
    out += [("pack a16w4", lambda: ops.pack_a16w4(q4, s4, z4, G)), ("pack da8w8", lambda: ops.pack_da8w8(q8, s8))]
    return out


def _serial(calls):
    return {name: call() for name, call in calls}


def _assert_same(got, want, where):
    for name, out in got:
        assert torch.equal(out, want[name]), f"{name}: differs from the serial result {where}"


def test_many_threads_on_shared_weights_match_serial(calls):
    want = _serial(calls)
    jobs = [c for c in calls for _ in range(6)]
    random.Random(0).shuffle(jobs)
    with ThreadPoolExecutor(THREADS) as pool:
        got = list(zip([n for n, _ in jobs], pool.map(lambda c: c[1](), jobs)))
    _assert_same(got, want, f"with {THREADS} Python threads")


@pytest.mark.parametrize("num_threads", [1, 2, 3, 8])
def test_results_do_not_depend_on_the_thread_count(calls, num_threads):
    want = _serial(calls)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(num_threads)
        _assert_same(_serial(calls).items(), want, f"at torch.set_num_threads({num_threads})")
    finally:
        torch.set_num_threads(before)


def test_thread_count_changing_during_concurrent_calls(calls):
    want = _serial(calls)
    before = torch.get_num_threads()
    stop = threading.Event()

    def toggle():
        counts = [1, 3, 2, 4]
        i = 0
        while not stop.is_set():
            torch.set_num_threads(counts[i % len(counts)])
            i += 1
            stop.wait(0.001)

    toggler = threading.Thread(target=toggle)
    toggler.start()
    try:
        jobs = [c for c in calls for _ in range(4)]
        random.Random(1).shuffle(jobs)
        with ThreadPoolExecutor(4) as pool:
            got = list(zip([n for n, _ in jobs], pool.map(lambda c: c[1](), jobs)))
    finally:
        stop.set()
        toggler.join()
        torch.set_num_threads(before)
    _assert_same(got, want, "while another thread changed torch.set_num_threads")


def _sycl_cpu_available():
    if not lowbit.sycl.available():
        return False
    try:
        lowbit.sycl.cpu_device()
        return True
    except RuntimeError:
        return False


@pytest.mark.skipif(not _sycl_cpu_available(), reason="SYCL CPU device unavailable")
def test_route_switch_during_concurrent_forwards():
    """Four threads call forward while a fifth toggles lowbit.sycl.route_cpu (issue 11, item 16). The packing and
    its layout used to be two attributes swapped one at a time, which left every layer permanently broken. Now
    each call decides the route once and reads the packing once: every call returns the native or the SYCL
    result exactly, and afterwards both settings work."""
    torch.manual_seed(6)
    layers = {m: lowbit.QuantLinear.from_linear(nn.Linear(K, N), m, group_size=G) for m in lowbit.MODES}
    x = torch.randn(3, K)
    native = {m: layer(x) for m, layer in layers.items()}
    with lowbit.sycl.route_cpu():
        routed = {m: layer(x) for m, layer in layers.items()}
    stop = threading.Event()
    failures = []

    def toggle():
        on = False
        while not stop.is_set():
            on = not on
            lowbit.sycl.route_cpu(on)
            stop.wait(0.0005)

    def work(seed):
        rng = random.Random(seed)
        for _ in range(60):
            mode = rng.choice(lowbit.MODES)
            try:
                out = layers[mode](x)
                if not (torch.equal(out, native[mode]) or torch.equal(out, routed[mode])):
                    failures.append(f"{mode}: a result that is neither the native nor the SYCL one")
            except Exception as e:  # noqa: BLE001 - any error is a failure here
                failures.append(f"{mode}: {type(e).__name__}: {e}")

    toggler = threading.Thread(target=toggle)
    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    before = lowbit.sycl.routing_cpu()
    toggler.start()
    try:
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    finally:
        stop.set()
        toggler.join()
        lowbit.sycl.route_cpu(before)
    assert not failures, failures[:5]
    with lowbit.sycl.route_cpu(False):
        assert all(torch.equal(layers[m](x), native[m]) for m in lowbit.MODES)
    with lowbit.sycl.route_cpu(True):
        assert all(torch.equal(layers[m](x), routed[m]) for m in lowbit.MODES)
