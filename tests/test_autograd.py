"""The input gradient of the linear ops (issue 11, item 8): grad_x = grad_y @ dequant(W) and the bias gradient,
registered with torch.library.register_autograd; the packed weight stays frozen. Held to autograd through the
dequantized reference in float64 (lowbit.reference), for the functional ops, QuantLinear, the SYCL ops and
torch.compile.

Tolerance: the backward sums N products grad_y[n] * W[n, k] in fp32, then rounds once to x's dtype; as in
helpers.assert_close_a16, 4 * sqrt(N) * u32 * sum_n |grad_y[n] W[n, k]| bounds the random-signed accumulation
errors, plus one unit roundoff of the output dtype. The da modes have the same gradient (a straight-through
estimator: the activation rounding is taken as the identity).
"""

import math

import pytest
import torch
from torch import nn

import cases
import lowbit
from helpers import U32, UNIT_ROUNDOFF, random_int4_offsets
from lowbit import modes, ops, reference

K, N, G = 96, 40, 32
MODES = cases.MODES


def _g(mode):
    return G if mode in cases.INT4_MODES else None


def _weights(mode, symmetric=False):
    w = cases.random_weights(mode, N, K, _g(mode), symmetric)
    return cases.pack(mode, w, _g(mode)), modes.get(mode).weights.dequantize(w, _g(mode))


def _op(mode, x, packed, bias):
    return cases.linear(mode, x, packed, N, _g(mode), bias)


def _assert_grad_close(got, want64, grad_y, w64):
    n = grad_y.shape[-1]
    magnitude = grad_y.double().abs().reshape(-1, n) @ w64.abs()
    tol = UNIT_ROUNDOFF[got.dtype] * want64.abs() + 4 * math.sqrt(n) * U32 * magnitude.reshape(want64.shape) + 1e-30
    err = (got.double() - want64).abs()
    assert (err <= tol).all(), f"worst gradient error {err.max().item():.3e}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("mode, symmetric", [(m, sym) for m in MODES
                                             for sym in ((False, True) if m in cases.INT4_MODES else (True,))])
def test_input_and_bias_gradients_match_the_dequantized_reference(mode, dtype, symmetric):
    packed, w64 = _weights(mode, symmetric)
    x = torch.randn(2, 3, K, dtype=dtype, requires_grad=True)
    bias = torch.randn(N, dtype=dtype, requires_grad=True)
    grad_y = torch.randn(2, 3, N, dtype=dtype)
    _op(mode, x, packed, bias).backward(grad_y)

    x64 = x.detach().double().requires_grad_()
    b64 = bias.detach().double().requires_grad_()
    (x64 @ w64.T + b64).backward(grad_y.double())
    assert x.grad.dtype == dtype and x.grad.shape == x.shape
    _assert_grad_close(x.grad, x64.grad, grad_y, w64)
    torch.testing.assert_close(bias.grad.double(), b64.grad, rtol=UNIT_ROUNDOFF[dtype] * 2, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_frozen_weights_and_no_grad_inputs(mode):
    """Only what requires grad gets one: the packed weight never does; without requires_grad nothing is recorded."""
    packed, _ = _weights(mode)
    x = torch.randn(4, K, requires_grad=True)
    y = _op(mode, x, packed, torch.randn(N))  # a bias that does not require grad
    y.sum().backward()
    assert x.grad is not None and packed.grad is None
    assert _op(mode, torch.randn(4, K), packed, None).grad_fn is None


@pytest.mark.parametrize("mode", MODES)
def test_layers_before_a_quantlinear_learn(mode):
    """A trainable nn.Linear feeding a frozen QuantLinear (an adapter on a quantized base model): its weight gets
    the gradient it gets through the dequantized weight, and the QuantLinear gets none."""
    torch.manual_seed(3)
    first = nn.Linear(K, K)
    base = nn.Linear(K, N)
    layer = lowbit.QuantLinear.from_linear(base, mode, group_size=G)
    x, grad_y = torch.randn(5, K), torch.randn(5, N)
    layer(first(x)).backward(grad_y)
    got = first.weight.grad.clone()

    first.zero_grad()
    w64 = layer.dequantized_weight().double()
    h = first(x).double()
    (h @ w64.T + layer.bias.double()).backward(grad_y.double())
    torch.testing.assert_close(got.double(), first.weight.grad.double(), rtol=1e-5, atol=1e-5)
    assert all(p.grad is None for p in layer.parameters())


def test_compiled_training_step_matches_eager():
    """torch.compile traces the registered backward (AOTAutograd): same gradients as eager."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(K, K), nn.GELU(), nn.Linear(K, N))
    lowbit.quantize_(model, "a16w4", group_size=G, filter_fn=lambda m, fqn: fqn == "2")
    x = torch.randn(6, K)

    def step(fn):
        model.zero_grad()
        fn(x).square().sum().backward()
        return model[0].weight.grad.clone()

    eager = step(model)
    compiled = step(torch.compile(model, backend="aot_eager", fullgraph=True))
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not lowbit.sycl.available(), reason="SYCL runtime unavailable")
@pytest.mark.parametrize("mode", MODES)
def test_sycl_ops_have_the_same_gradient(mode):
    try:
        lowbit.sycl.cpu_device()
    except RuntimeError as e:
        pytest.skip(str(e))
    with lowbit.sycl.route_cpu():
        packed, w64 = _weights(mode)
        assert packed.dim() == 4
        x = torch.randn(3, K, requires_grad=True)
        grad_y = torch.randn(3, N)
        _op(mode, x, packed, None).backward(grad_y)
    _assert_grad_close(x.grad, grad_y.double() @ w64, grad_y, w64)


def test_float_offsets_input_gradient():
    q, s, o = random_int4_offsets(N, K, G)
    packed, w64 = ops.pack_a16w4(q, s, o, G), reference.dequantize_int4(q, s, o, G)
    x = torch.randn(2, 3, K, requires_grad=True)
    grad_y = torch.randn(2, 3, N)
    ops.linear_a16w4(x, packed, N, G).backward(grad_y)
    x64 = x.detach().double().requires_grad_()
    (x64 @ w64.T).backward(grad_y.double())
    _assert_grad_close(x.grad, x64.grad, grad_y, w64)
