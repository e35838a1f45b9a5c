"""The Row LSTM's scan (hand-written forward and backward) against the step-by-step LSTM through
autograd: equal hidden states and equal gradients for the pre-activations and the weight, with the
cell step in C++ (chainrule.native) and in its pure-PyTorch twin."""

from __future__ import annotations

import pytest
import torch

from chainrule.models.diagonal_bilstm import diagonal_chunks
from chainrule.models.lstm_scan import chunked_lstm_scan, lstm_scan
from chainrule.models.pixelrnn import lstm_cell


@pytest.fixture(autouse=True, params=["native", "torch"])
def cell_kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with either implementation of the scans' cell step."""
    monkeypatch.setenv("CHAINRULE_NATIVE", "1" if request.param == "native" else "0")
    return request.param


def shifted(h: torch.Tensor, offset: int) -> torch.Tensor:
    """out[..., p, :] = h[..., p + offset, :] inside 0..P-1, else 0."""
    out = torch.zeros_like(h)
    size = h.shape[-2]
    if offset >= 0:
        out[..., : size - offset, :] = h[..., offset:, :]
    else:
        out[..., -offset:, :] = h[..., : size + offset, :]
    return out


def step_by_step(pre: torch.Tensor, weight: torch.Tensor, offsets: tuple[int, ...]) -> torch.Tensor:
    """The recurrence of `lstm_scan`'s docstring, one autograd step at a time with `lstm_cell`."""
    g_, steps, b, p, four = pre.shape
    h = c = pre.new_zeros(g_, b, p, four // 4)
    states = []
    for t in range(steps):
        neighbours = torch.cat([shifted(h, o) for o in offsets], -1)  # (G, B, P, K ch)
        gates = pre[:, t] + torch.einsum("gbpk,gkf->gbpf", neighbours, weight)
        h, c = lstm_cell(gates, c, dim=-1)
        states.append(h)
    return torch.stack(states, 1)


@pytest.mark.parametrize("offsets", [(-1, 0, 1), (0,), (-2, 1)])
def test_scan_matches_step_by_step_values_and_gradients(offsets: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(0)
    g_, steps, b, p, ch = 2, 4, 3, 5, 2
    pre = torch.randn(g_, steps, b, p, 4 * ch, generator=gen, dtype=torch.double, requires_grad=True)
    weight = torch.randn(g_, len(offsets) * ch, 4 * ch, generator=gen, dtype=torch.double)
    weight.requires_grad_()
    upstream = torch.randn(g_, steps, b, p, ch, generator=gen, dtype=torch.double)

    results = []
    for fn in (lstm_scan, step_by_step):
        h = fn(pre, weight, offsets)
        results.append((h, *torch.autograd.grad((h * upstream).sum(), (pre, weight))))
    for ours, reference in zip(*results, strict=True):
        assert torch.allclose(ours, reference, rtol=1e-12, atol=1e-12)


def test_scan_in_bfloat16_follows_the_float32_cell() -> None:
    """bf16 pre-activations: the cell runs in float32 (states returned in float32), close to the
    all-float32 scan."""
    gen = torch.Generator().manual_seed(1)
    pre = torch.randn(2, 6, 2, 4, 8, generator=gen)
    weight = torch.randn(2, 6, 8, generator=gen) * 0.3
    low = lstm_scan(pre.bfloat16(), weight, (-1, 0, 1))
    assert low.dtype == torch.float32
    assert torch.allclose(low, lstm_scan(pre, weight, (-1, 0, 1)), atol=0.05)


@pytest.mark.parametrize("dim", [1, -1])
def test_lstm_cell_is_the_textbook_update(dim: int) -> None:
    """c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c') written out with torch's sigmoid and tanh,
    gates [o, f, i, g] along `dim`."""
    gen = torch.Generator().manual_seed(2)
    gates = torch.randn(3, 8, 5, generator=gen, dtype=torch.double) * 3
    gates = gates if dim == 1 else gates.transpose(1, 2)
    c = torch.randn(
        gates.shape[: dim % 3] + (2,) + gates.shape[dim % 3 + 1 :], generator=gen, dtype=torch.double
    )
    o, f, i, g = gates.chunk(4, dim)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h, c_out = lstm_cell(gates, c, dim=dim)
    assert torch.allclose(c_out, c_new, rtol=0, atol=1e-14)
    assert torch.allclose(h, torch.sigmoid(o) * torch.tanh(c_new), rtol=0, atol=1e-14)


# -- the chunked scan (steps of varying length: the Diagonal BiLSTM's anti-diagonals) -------------
def chunked_step_by_step(x: torch.Tensor, weight: torch.Tensor, chunks, offsets, bias=None) -> torch.Tensor:
    """`chunked_lstm_scan`'s recurrence written from its docstring: per step, each label's input,
    neighbours and carried cell state looked up by label in the step before, `lstm_cell` through
    autograd."""
    g_, _, b, _ = x.shape
    zero = x.new_zeros(g_, b, weight.shape[-1] // 4)
    h_before, c_before, states, start = {}, {}, [], 0
    for n, first in chunks:
        h_now, c_now = {}, {}
        for r in range(first, first + n):
            row = torch.cat([x[:, start + r - first], *(h_before.get(r + o, zero) for o in offsets)], -1)
            gates = torch.einsum("gbk,gkf->gbf", row, weight)
            if bias is not None:
                gates = gates + bias[:, None]
            h_now[r], c_now[r] = lstm_cell(gates, c_before.get(r, zero), dim=-1)
            states.append(h_now[r])
        h_before, c_before, start = h_now, c_now, start + n
    return torch.stack(states, 1)


@pytest.mark.parametrize(
    ("chunks", "offsets"),
    [
        (diagonal_chunks(3, 4), (-1, 0)),  # the Diagonal BiLSTM's
        (diagonal_chunks(4, 2), (-1, 0)),
        (((3, 0), (3, 0), (3, 0)), (-1, 0, 1)),  # the Row LSTM's, as chunks
        (((2, 0), (3, 1), (1, 5), (2, 4)), (-2, 1)),  # gaps, labels missing before, a jump
    ],
)
@pytest.mark.parametrize("inputs", [3, 0])
@pytest.mark.parametrize("with_bias", [True, False])
def test_chunked_scan_matches_step_by_step_values_and_gradients(chunks, offsets, inputs, with_bias) -> None:
    gen = torch.Generator().manual_seed(3)
    g_, b, ch, n = 2, 3, 2, sum(c[0] for c in chunks)
    x = torch.randn(g_, n, b, inputs, generator=gen, dtype=torch.double, requires_grad=True)
    weight = torch.randn(g_, inputs + len(offsets) * ch, 4 * ch, generator=gen, dtype=torch.double)
    weight.requires_grad_()
    bias = (
        torch.randn(g_, 4 * ch, generator=gen, dtype=torch.double, requires_grad=True) if with_bias else None
    )
    upstream = torch.randn(g_, n, b, ch, generator=gen, dtype=torch.double)
    wrt = (x, weight, bias) if with_bias else (x, weight)
    results = []
    for fn in (chunked_lstm_scan, chunked_step_by_step):
        h = fn(x, weight, chunks, offsets, bias)
        results.append((h, *torch.autograd.grad((h * upstream).sum(), wrt, allow_unused=True)))
    for ours, reference in zip(*results, strict=True):
        assert torch.allclose(ours, reference, rtol=1e-12, atol=1e-12)


def test_chunked_scan_equals_the_row_scan() -> None:
    """Equal chunks of P labels are the Row LSTM's scan with positions outside the batch (its
    pre-activations the chunked scan's inputs, through an identity block of the weight)."""
    gen = torch.Generator().manual_seed(4)
    steps, b, p, ch = 4, 2, 5, 3
    pre = torch.randn(1, steps, b, p, 4 * ch, generator=gen)
    weight = torch.randn(1, 3 * ch, 4 * ch, generator=gen) * 0.5
    rows = lstm_scan(pre, weight, (-1, 0, 1))  # (1, T, B, P, ch)
    packed = pre.transpose(2, 3).reshape(1, steps * p, b, 4 * ch)
    both = torch.cat([torch.eye(4 * ch)[None], weight], 1)
    chunked = chunked_lstm_scan(packed, both, ((p, 0),) * steps, (-1, 0, 1))
    assert torch.allclose(chunked, rows.transpose(2, 3).reshape(1, steps * p, b, ch), atol=1e-6)
