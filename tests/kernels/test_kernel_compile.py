"""torch.library registration: fake implementations, both registration kinds (triton_op,
custom_op) and their selection, and torch.compile tracing the Triton ops in one graph
(aot_eager on CPU under the interpreter; inductor on CUDA). The triton_op decomposition
traced without a GPU is checked by the validation command (test_check.py)."""

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


# opcheck of the four ops, the ops in the AOT graphs of a LongConv layer and
# torch.compile(fullgraph=True) of LongConv and SequenceModel run in the validation
# command (tests/kernels/test_check.py runs it); these cover what it does not.


def test_fake_tensor_shapes_without_running_kernels():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        u, k, D = torch.empty(3, 4, 5000), torch.empty(4, 77), torch.empty(4)
        y = fb.fftconv_fn(u, k, D, g2=torch.empty(3, 4, 5000))
        assert y.shape == u.shape and y.dtype == u.dtype


@pytest.mark.parametrize("causal", [True, False])
def test_torch_compile_traces_gated_forward_and_backward(causal):
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


def test_op_kind_selection():
    """triton_op where torch has it and the kernels are compiled; custom_op on older torch
    and under the interpreter; NEUROCONV_FB_OPS overrides, checked."""
    from types import SimpleNamespace

    from neuroconv.kernels._common import OPS_KIND, op_kind

    new = SimpleNamespace(triton_op=object(), wrap_triton=object(), custom_op=object())
    old = SimpleNamespace(custom_op=object())  # torch < 2.6
    assert op_kind(new, interpreter=False, env="") == "triton_op"
    assert op_kind(new, interpreter=True, env="") == "custom_op"
    assert op_kind(old, interpreter=False, env="") == "custom_op"
    assert op_kind(new, interpreter=False, env="custom_op") == "custom_op"
    with pytest.raises(ValueError, match="torch >= 2.6"):
        op_kind(old, interpreter=False, env="triton_op")
    with pytest.raises(ValueError, match="NEUROCONV_FB_OPS must be 'custom_op', 'triton_op' or unset; got 'x'"):
        op_kind(new, env="x")
    assert OPS_KIND == ("custom_op" if DEV == "cpu" else op_kind())


def test_the_other_registration_works_too():
    """Both kinds register and run: the fallback kind (custom_op on a GPU, triton_op's
    registration under the interpreter) under a test namespace, opchecked and equal."""
    from neuroconv.kernels import _common

    other = "custom_op" if _common.OPS_KIND == "triton_op" else "triton_op"
    ns = f"nctest_{other}"
    fb.register_ops(ns, other)
    u, k, D, g1, g2 = _inputs()
    p = fb.make_plan(u.shape[-1])
    args = (u, fb.kernel_spectrum(k, u.shape[-1], True, p, torch.float32), D, g1, g2,
            p.N, p.N1, p.N2, p.N3, p.three_pass)
    op = getattr(torch.ops, ns).flashbutterfly_fwd.default
    torch.testing.assert_close(op(*args), torch.ops.neuroconv.flashbutterfly_fwd(*args), rtol=0, atol=0)
    if other == "custom_op" or DEV == "cuda":  # triton_op's fake impl traces kernels: compiled ones only
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor"))
