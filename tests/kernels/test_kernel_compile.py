"""torch.library registration: fake (meta) implementations, opcheck, and torch.compile
tracing the Triton ops in one graph (aot_eager on CPU under the interpreter; inductor on
CUDA)."""

from __future__ import annotations

import pytest
import torch
from kernel_checks import needs_interpreter_or_cuda

pytestmark = needs_interpreter_or_cuda

fb = pytest.importorskip("neuroconv.kernels.flashbutterfly")
mk = pytest.importorskip("neuroconv.kernels.monarch")

DEV = "cuda" if torch.cuda.is_available() else "cpu"
BACKEND = "inductor" if DEV == "cuda" else "aot_eager"


def _inputs(L=21, Lk=13, B=1, H=2):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g).to(DEV)  # noqa: E731
    return r(B, H, L), r(H, Lk), r(H), r(B, H, L), r(B, H, L)


def test_opcheck_flashbutterfly_ops():
    u, k, D, g1, g2 = _inputs()
    plan = fb.make_plan(u.shape[-1])
    args = (plan.N, plan.N1, plan.N2, plan.N3, plan.three_pass)
    kspec = fb.kernel_spectrum(k, u.shape[-1], False, plan, torch.float32)
    tests = ("test_schema", "test_faketensor", "test_aot_dispatch_dynamic")
    torch.library.opcheck(torch.ops.neuroconv.flashbutterfly_fwd.default,
                          (u, kspec, D, g1, g2, *args), test_utils=tests)
    torch.library.opcheck(torch.ops.neuroconv.flashbutterfly_bwd.default,
                          (u, torch.randn_like(u), kspec, D, g1, g2, *args, False, 13, 6, True, True),
                          test_utils=tests)


def test_opcheck_monarch_ops():
    P = 16
    u, k, D, _, _ = _inputs(L=5)
    H = u.shape[1]
    kspec = torch.randn(H, 2, P, P, device=DEV)
    tiles = [torch.randn(2, P, P, device=DEV) * 0.1 for _ in range(6)]
    tests = ("test_schema", "test_faketensor", "test_aot_dispatch_dynamic")
    torch.library.opcheck(torch.ops.neuroconv.monarch_conv_fwd.default, (u, kspec, D, *tiles, 10, 10, 0),
                          test_utils=tests)
    torch.library.opcheck(torch.ops.neuroconv.monarch_conv_bwd.default,
                          (u, torch.randn_like(u), kspec, D, *tiles, 10, 10, 0), test_utils=tests)


def test_fake_tensor_shapes_without_running_kernels():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        u, k, D = torch.empty(3, 4, 5000), torch.empty(4, 77), torch.empty(4)
        y = fb.fftconv_fn(u, k, D, g2=torch.empty(3, 4, 5000))
        assert y.shape == u.shape and y.dtype == u.dtype


@pytest.mark.parametrize("causal", [True, False])
def test_torch_compile_traces_forward_and_backward(causal):
    u, k, D, g1, g2 = _inputs()
    ins = [t.requires_grad_() for t in (u, k, D, g1, g2)]

    def f(u, k, D, g1, g2):
        return (fb.fftconv_fn(u, k, D, causal=causal, g1=g1, g2=g2) ** 2).sum()

    torch._dynamo.reset()
    compiled = torch.compile(f, backend=BACKEND, fullgraph=True)
    want = torch.autograd.grad(f(*ins), ins)
    got = torch.autograd.grad(compiled(*ins), ins)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_torch_compile_learned_butterfly():
    from neuroconv.butterfly import ButterflyFFTConv

    m = ButterflyFFTConv(20, backend="triton").to(DEV)
    u, k, D, _, _ = _inputs(L=20, Lk=20)
    torch._dynamo.reset()
    compiled = torch.compile(m, backend=BACKEND, fullgraph=True)
    torch.testing.assert_close(compiled(u, k, D), m(u, k, D), atol=1e-5, rtol=1e-5)


def test_torch_compile_model_puts_the_custom_ops_in_the_graph():
    """torch.compile(model) on a LongConv layer with backend="triton": the AOT forward and
    backward graphs hold the registered ops (traced through their fake implementations)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    from neuroconv.layers import LongConv

    seen = []

    def record(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return make_boxed_func(gm.forward)

    model = LongConv(8, 40, backend="triton").to(DEV)
    x = torch.randn(2, 40, 8, device=DEV)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend=aot_autograd(fw_compiler=record, bw_compiler=record))
    out = compiled(x)
    out.sum().backward()
    torch.testing.assert_close(out, model(x), atol=1e-5, rtol=1e-5)
    assert any("flashbutterfly_fwd" in s for s in seen), seen
    assert any("flashbutterfly_bwd" in s for s in seen), seen
