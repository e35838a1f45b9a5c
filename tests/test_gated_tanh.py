"""The gated activation tanh(a) sigmoid(b): the C++ passes (chainrule.native) against the PyTorch
`reference`, their specification, forward and backward, in both precisions, at the limits, inside
torch.compile, and in the Gated PixelCNN that uses it."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

import chainrule.gated_tanh as gt
from chainrule import native
from chainrule.models import build_model

needs_native = pytest.mark.skipif(
    not native.enabled() or shutil.which("c++") is None,
    reason="no C++ compiler or ninja here, or CHAINRULE_NATIVE=0: the reference runs instead",
)

#: dtype -> (forward, backward) absolute tolerance against the reference (inputs of scale 3)
TOLERANCE = {torch.float32: (1e-6, 2e-6), torch.bfloat16: (8e-3, 2e-2)}
CL = torch.channels_last


def _pre(shape: tuple[int, ...], dtype: torch.dtype, layout: str) -> torch.Tensor:
    x = (3 * torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)).to(dtype)
    if layout == "channels_last":
        return x.contiguous(memory_format=CL)
    if layout == "strided":  # every other position of a larger map
        return torch.cat([x, x], dim=-1)[..., ::2]
    return x


def _agree(pre: torch.Tensor, ours: torch.Tensor, theirs: torch.Tensor, dtype: torch.dtype) -> None:
    """Values and gradients (for one random upstream gradient) within the dtype's tolerance."""
    fwd, bwd = TOLERANCE[dtype]
    assert torch.allclose(ours.double(), theirs.double(), rtol=0, atol=fwd)
    grad = torch.randn(ours.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    (g_ours,) = torch.autograd.grad(ours, pre, grad)
    (g_theirs,) = torch.autograd.grad(theirs, pre, grad)
    assert torch.allclose(g_ours.double(), g_theirs.double(), rtol=0, atol=bwd)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("shape", "dim", "layout"),
    [
        ((4, 96, 5, 7), 1, "channels_last"),  # the Gated PixelCNN's maps
        ((3, 34, 4, 2), 1, "contiguous"),  # 17 channels: a vector tail
        ((5, 6, 3), 1, "strided"),
        ((9, 10), 1, "contiguous"),  # the sampler's pixels
        ((2, 3, 8), -1, "contiguous"),
    ],
)
def test_native_passes_are_the_reference(dtype, shape, dim: int, layout: str) -> None:
    pre = _pre(shape, dtype, layout).requires_grad_()
    ours, theirs = gt.gated_tanh(pre, dim), gt.reference(pre, dim)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == dtype
    _agree(pre, ours, theirs, dtype)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("pads", [(1, 1, 1, 0), (3, 3, 3, 0), (0, 0, 0, 0), (2, 0, 1, 3)])
def test_the_padded_pass_is_the_reference_padded(dtype, pads: tuple[int, int, int, int]) -> None:
    """With `pads` the C++ pass writes the gate into the zero-padded map the next convolution
    reads, and its backward reads that map's gradient in place."""
    pre = _pre((3, 10, 5, 7), dtype, "channels_last").requires_grad_()
    ours, theirs = gt.gated_tanh(pre, pads=pads), F.pad(gt.reference(pre), pads)
    assert ours.shape == theirs.shape and ours.is_contiguous(memory_format=CL)
    _agree(pre, ours, theirs, dtype)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("pads", [None, (1, 1, 1, 0)])
def test_training_and_evaluation_give_the_same_values(dtype, pads) -> None:
    """Under autograd the pass also writes the slopes its backward takes; the values are the same
    bits as without them (a model's log_prob is the same in every mode)."""
    pre = _pre((3, 10, 5, 7), dtype, "channels_last")
    with torch.no_grad():
        evaluated = gt.gated_tanh(pre, pads=pads)
    trained = gt.gated_tanh(pre.clone().requires_grad_(), pads=pads)
    assert trained.requires_grad and torch.equal(trained.detach(), evaluated)


def test_pads_need_a_map() -> None:
    with pytest.raises(ValueError, match="4D"):
        gt.gated_tanh(torch.zeros(2, 4), pads=(1, 1, 1, 0))


@needs_native
def test_native_passes_run_and_keep_a_channels_last_layout() -> None:
    pre = _pre((2, 8, 3, 3), torch.float32, "channels_last")
    with torch.profiler.profile() as prof:
        out = gt.gated_tanh(pre)
    calls = [e.key for e in prof.key_averages() if "gated_tanh_forward" in e.key]
    assert calls, "the C++ forward did not run"
    assert out.is_contiguous(memory_format=CL)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_limits_and_nan_are_the_reference(dtype) -> None:
    values = torch.tensor([float("nan"), float("inf"), -float("inf"), 100.0, -100.0, 30.0, -30.0, 0.5, 0.0])
    a, b = torch.meshgrid(values, values, indexing="ij")
    pre = torch.stack([a.flatten(), b.flatten()], dim=1).to(dtype)  # (81, 2): every pair
    ours, theirs = gt.gated_tanh(pre), gt.reference(pre)
    assert torch.equal(ours.isnan(), theirs.isnan())
    finite = ~theirs.isnan()
    assert torch.allclose(ours[finite].double(), theirs[finite].double(), rtol=0, atol=1e-6)
    grad = torch.ones_like(ours)
    pre_ours, pre_theirs = pre.clone().requires_grad_(), pre.clone().requires_grad_()
    (g_ours,) = torch.autograd.grad(gt.gated_tanh(pre_ours), pre_ours, grad)
    (g_theirs,) = torch.autograd.grad(gt.reference(pre_theirs), pre_theirs, grad)
    assert torch.equal(g_ours.isnan(), g_theirs.isnan())
    finite = ~g_theirs.isnan()
    assert torch.allclose(g_ours[finite].double(), g_theirs[finite].double(), rtol=0, atol=1e-6)


@needs_native
def test_the_operator_names_bad_input() -> None:
    forward = native.ops().gated_tanh_forward
    gt.gated_tanh(torch.zeros(1, 2))  # registers the operator's Python parts
    with pytest.raises(RuntimeError, match=r"pre must be \(rows, 2 C\)"):
        forward(torch.zeros(3, 5))
    with pytest.raises(RuntimeError, match="float32 or bfloat16"):
        forward(torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="contiguous"):
        forward(torch.zeros(4, 3)[:, :2])
    with pytest.raises(RuntimeError, match=r"grad must be \(rows, 2\)"):
        native.ops().gated_tanh_backward(torch.zeros(3, 3), torch.zeros(3, 4))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_dtypes_run_the_reference(dtype) -> None:
    pre = _pre((3, 8, 2, 2), dtype, "contiguous")
    assert torch.equal(gt.gated_tanh(pre), gt.reference(pre))


def test_odd_widths_fail_as_the_reference_does() -> None:
    with pytest.raises(RuntimeError):
        gt.gated_tanh(torch.zeros(2, 5))


@needs_native
def test_compiled_graph_holds_the_operator_and_matches_eager() -> None:
    pre = _pre((2, 16, 4, 4), torch.float32, "channels_last")

    def loss(p: torch.Tensor) -> torch.Tensor:
        return (gt.gated_tanh(p + 1) * 2).sum() + gt.gated_tanh(p, pads=(1, 1, 1, 0)).sum()

    torch._dynamo.reset()
    compiled = torch.compile(loss, fullgraph=True)  # no graph break at the operator
    p1, p2 = pre.clone().requires_grad_(), pre.clone().requires_grad_()
    l1, l2 = compiled(p1), loss(p2)
    l1.backward()
    l2.backward()
    assert torch.allclose(l1, l2, atol=1e-5)
    assert torch.allclose(p1.grad, p2.grad, atol=1e-6)


@needs_native
def test_gated_pixelcnn_log_prob_is_the_same_through_the_reference(monkeypatch) -> None:
    model = build_model("gated-pixelcnn", image_shape=[5, 5], channels=8, layers=2, output_channels=8)
    x = torch.bernoulli(torch.full((6, 25), 0.4), generator=torch.Generator().manual_seed(2))
    ours = model.log_prob(x)
    monkeypatch.setattr(gt, "_native_ready", lambda: False)
    theirs = model.log_prob(x)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-4)
