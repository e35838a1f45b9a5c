"""The PixelRNN recurrences as autograd functions with hand-written backward passes.

At step t (a row of the Row LSTM) each of P positions has LSTM pre-activations [o, f, i, g] =
pre[t] + sum_k W_k h[t - 1, p + offset_k] (zero states outside 0..P-1), and c[t, p] comes from
c[t - 1, p]. Run step by step through autograd, every step costs a dozen small operations forward
and more backward (pads, slices and concatenations of the neighbours, three sigmoids, their
gradients, zero-filled slice gradients). Here the forward writes the shifted neighbours into one
preallocated buffer per step and keeps the gate activations; the backward runs the steps in
reverse with in-place arithmetic (each gate's gradient one product and aten's fused sigmoid or tanh
backward: 3-4 % faster training steps than the arithmetic written out, in-process A/B, 2 threads,
batch 64, 2026-12-06) and computes the weight gradient as one large matmul over all steps.

`chunked_lstm_scan` is the same recurrence over steps of varying length, packed one after the
other (the Diagonal BiLSTM's anti-diagonals: 1, 2, ..., 28, ..., 1 pixels), each step one matmul of
just its own positions; positions are labelled (a diagonal's rows), and a label reads the labels
at its offsets in the step before where that step has them. It replaced the Diagonal BiLSTM's
step-by-step autograd loop over the same diagonals. It takes the positions' inputs rather than
their pre-activations: each step's matmul is [inputs | neighbours' states] by the stacked
input-to-state and state-to-state weights (K = in + K' ch), the bias added by the cell and its
gradient summed step by step, where an input-to-state matmul over all positions first wrote a
pre-activation map that every step then read (with a bias copied into every row by `baddbmm`):
Diagonal BiLSTM training step 1.10-1.11x (bf16) and 1.13-1.16x (fp32) together with the cell's
changes of that day (side by side at one thread each, 2026-12-08). For the Row LSTM, the chunked
form (positions outside the batch) was 6-12 % slower than `LSTMScan`, which stays.

Inside both scans tanh is computed as 2 σ(2x) - 1: torch's CPU tanh is several times slower than
its sigmoid (57,000 float32 values, one thread: 144 against 42 us for the identity's four
kernels), and the gates' σ(o f i) and σ(2 g) are one sigmoid over whole rows (305 -> 125 us a
step). Diagonal BiLSTM training step, batch 64, one thread, allocations kept: 1.31x (fp32) and
1.25x (bf16) faster than the step-by-step loop with torch.tanh, of which the chunked scan alone
gave 1.19x and 1.14x (in-process A/B, 2026-12-06). The samplers' `pixelrnn.lstm_cell` keeps
torch.tanh: at a few images a step the identity's extra kernels cost more than they save (sampling
1.4-1.5x slower). The recurrences' matmuls run in the pre-activations' precision: an fp32
recurrence under bf16 autocast (no casts of gates and gradients) was 4 % slower.

Each step's cell (σ of three gates, two tanh, the state update; backward the gates' gradients and
the carried state's) runs as one C++ pass over the step's positions (`chainrule.native`, the
operators `lstm_cell_forward` and `lstm_cell_backward`; `lstm_cell_step.cell_forward` and `cell_backward`
are their specification and fallback): where the PyTorch twin makes a dozen passes over strided
views of the step's arrays, the C++ loop reads each position's pre-activations once and writes
the pre-activation gradient in its own dtype (the twin converts the whole gradient again at the
end). Training steps, in-process A/B against the twin, batch 64, 2 threads, 2026-12-07: Row LSTM
1.07-1.19x, Diagonal BiLSTM 1.12-1.18x (bf16 and fp32). The chunked scan's loops run in C++ too.

The arithmetic is that of `pixelrnn.lstm_cell` (half-precision pre-activations lifted to float32
for the cell; the matmuls in the pre-activations' precision), so results equal the step-by-step
version within rounding (tests/test_lstm_scan.py checks both scans against it in float64).
"""

from __future__ import annotations

import functools

import torch
from torch.utils._python_dispatch import _len_torch_dispatch_stack

from chainrule import native
from chainrule.models.lstm_cell_step import as_rows, cell_dtype, cells


def _gather(buf: torch.Tensor, h: torch.Tensor, offsets: tuple[int, ...]) -> None:
    """buf[..., p, k-th block] = h[..., p + offsets[k], :] where that is inside, else left as is
    (zero): the neighbours of every position, side by side."""
    ch, size = h.shape[-1], h.shape[-2]
    for k, o in enumerate(offsets):
        block = buf[..., k * ch : (k + 1) * ch]
        if o == 0:
            block.copy_(h)
        elif o > 0:
            block[..., : size - o, :].copy_(h[..., o:, :])
        else:
            block[..., -o:, :].copy_(h[..., : size + o, :])


def _scatter_add(dh: torch.Tensor, dbuf: torch.Tensor, offsets: tuple[int, ...]) -> None:
    """Adjoint of `_gather`: dh[..., p + offsets[k], :] += dbuf[..., p, k-th block]."""
    ch, size = dh.shape[-1], dh.shape[-2]
    for k, o in enumerate(offsets):
        block = dbuf[..., k * ch : (k + 1) * ch]
        if o == 0:
            dh.add_(block)
        elif o > 0:
            dh[..., o:, :].add_(block[..., : size - o, :])
        else:
            dh[..., : size + o, :].add_(block[..., -o:, :])


class LSTMScan(torch.autograd.Function):
    """h (G, T, B, P, ch) from pre (G, T, B, P, 4 ch) and weight (G, K ch, 4 ch): G independent
    recurrences (directions), T steps, B × P positions per step, K neighbour taps at `offsets`."""

    @staticmethod
    def forward(ctx, pre: torch.Tensor, weight: torch.Tensor, offsets: tuple[int, ...]) -> torch.Tensor:
        g_, steps, b, p, four = pre.shape
        ch, k = four // 4, len(offsets)
        cell = cell_dtype(pre.dtype)
        step_cells, _ = cells(pre)
        w = weight.to(pre.dtype)
        bufs = pre.new_zeros(g_, steps, b, p, k * ch)  # neighbours' states, the matmuls' input
        acts = torch.empty(g_, steps, b, p, four, dtype=cell, device=pre.device)  # σ(o f i), tanh g
        cs = torch.empty(g_, steps, b, p, ch, dtype=cell, device=pre.device)
        tcs = torch.empty_like(cs)  # tanh(c)
        hs = torch.empty_like(cs)
        for t in range(steps):
            if t == 0:  # zero states before the first step
                gates, before = as_rows(pre[:, 0]), None
            else:
                _gather(bufs[:, t], hs[:, t - 1], offsets)
                gates = torch.baddbmm(pre[:, t].reshape(g_, b * p, four), bufs[:, t].view(g_, b * p, -1), w)
                before = as_rows(cs[:, t - 1])
            parts = (as_rows(acts[:, t]), as_rows(cs[:, t]), as_rows(tcs[:, t]), as_rows(hs[:, t]))
            step_cells(gates, before, 0, b * p if t else 0, 0, *parts)
        ctx.offsets = offsets
        ctx.weight_dtype = weight.dtype
        ctx.save_for_backward(bufs, acts, cs, tcs, w)
        return hs

    @staticmethod
    @torch.autograd.function.once_differentiable  # no graph of the backward (as the C++ loops)
    def backward(ctx, dhs: torch.Tensor):
        bufs, acts, cs, tcs, w = ctx.saved_tensors
        g_, steps, b, p, four = acts.shape
        _, step_gradients = cells(acts)
        dpre = torch.empty(acts.shape, dtype=w.dtype, device=w.device)  # in the pre-activations' dtype
        dh = torch.zeros_like(cs[:, 0])  # gradient reaching h[t] from step t + 1
        dc = torch.zeros_like(dh)  # ... and c[t]: dc_total f of step t + 1
        wt = w.transpose(1, 2)
        for t in reversed(range(steps)):
            dh.add_(dhs[:, t])
            before, carried = (as_rows(cs[:, t - 1]), as_rows(dc)) if t else (None, None)
            rows = b * p if t else 0
            step_gradients(
                as_rows(dh),
                as_rows(dc),
                as_rows(acts[:, t]),
                as_rows(tcs[:, t]),
                before,
                0,
                rows,
                0,
                as_rows(dpre[:, t]),
                carried,
            )
            if t > 0:
                dh.zero_()
                dbuf = torch.bmm(dpre[:, t].view(g_, b * p, four), wt).view(g_, b, p, -1)
                dbuf = dbuf.to(dh.dtype)  # once: the adds below would each convert (1.02x)
                _scatter_add(dh, dbuf, ctx.offsets)
        dweight = None
        if ctx.needs_input_grad[1]:
            rows = bufs.view(g_, steps * b * p, -1).transpose(1, 2)
            dweight = torch.bmm(rows, dpre.view(g_, -1, four)).to(ctx.weight_dtype)
        return dpre, dweight, None


@torch.compiler.disable  # train.compile compiles around it: the loop is already one kernel per step
def lstm_scan(pre: torch.Tensor, weight: torch.Tensor, offsets: tuple[int, ...]) -> torch.Tensor:
    """Hidden states (G, T, B, P, ch) of the LSTM recurrence over pre-activations pre
    (G, T, B, P, 4 ch) [o, f, i, g] with state-to-state weight (G, K ch, 4 ch) acting on the K
    neighbours h[t - 1, p + offsets[k]] side by side; zero initial states."""
    return _without_autocast(LSTMScan, pre, weight, tuple(offsets))


def _without_autocast(function: type[torch.autograd.Function], pre: torch.Tensor, *args) -> torch.Tensor:
    """`function.apply(pre, *args)` with autocast off (the scans' dtypes are explicit inside)."""
    kind = pre.device.type
    if not torch.amp.is_autocast_available(kind):  # e.g. the meta device: nothing to switch off
        return function.apply(pre, *args)
    with torch.autocast(kind, enabled=False):
        return function.apply(pre, *args)


# -- the same recurrence over steps of varying length (the Diagonal BiLSTM's anti-diagonals) -----
#: one step of a chunked scan: its packed positions [start, end); each neighbour tap's copy
#: (tap k, first and end position written, first position read in the step before); the cell
#: state's carry (first and end position, first position read), None where nothing is carried
ChunkStep = tuple[int, int, tuple[tuple[int, int, int, int], ...], tuple[int, int, int] | None]


@functools.lru_cache(maxsize=32)
def chunk_plan(chunks: tuple[tuple[int, int], ...], offsets: tuple[int, ...]) -> tuple[ChunkStep, ...]:
    """The copies of a chunked scan whose step t holds positions labelled first_t .. first_t +
    n_t - 1 (`chunks`: (n_t, first_t) per step, packed one after the other): label r reads the
    state of label r + offsets[k] of the step before where that step has it (zero state
    otherwise), and carries the cell state of its own label from there."""
    plan, start, before = [], 0, None
    for n, first in chunks:
        taps, carry = [], None
        if before is not None:
            b_start, b_n, b_first = before
            for k, o in enumerate((*offsets, 0)):  # the last: the cell state's own label
                lo, hi = max(first, b_first - o), min(first + n, b_first + b_n - o)
                if hi > lo:
                    copy = (start + lo - first, start + hi - first, b_start + lo + o - b_first)
                    if k < len(offsets):
                        taps.append((k, *copy))
                    else:
                        carry = copy
        plan.append((start, start + n, tuple(taps), carry))
        before, start = (start, n, first), start + n
    return tuple(plan)


def chunked_forward(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, plan: tuple[ChunkStep, ...]
) -> list[torch.Tensor]:
    """The chunked scan's forward loop over `chunk_plan`'s steps: [hs, bufs (per position its
    input x and the neighbours' states side by side, zero where none), acts, cs, tcs]. The
    specification of (and fallback for) native `chunked_lstm_forward`, which runs the same loop
    without Python's per-step cost."""
    g_, n_all, b, inputs = x.shape
    four = w.shape[2]
    ch = four // 4
    cell = cell_dtype(x.dtype)
    step_cells, _ = cells(x)
    bufs = x.new_zeros(g_, n_all, b, w.shape[1])
    bufs[..., :inputs] = x
    acts = torch.empty(g_, n_all, b, four, dtype=cell, device=x.device)
    cs = torch.empty(g_, n_all, b, ch, dtype=cell, device=x.device)
    tcs, hs = torch.empty_like(cs), torch.empty_like(cs)
    all_cs = as_rows(cs)
    for start, end, taps, carry in plan:
        for tap, lo, hi, src in taps:
            columns = slice(inputs + tap * ch, inputs + (tap + 1) * ch)
            bufs[:, lo:hi, :, columns].copy_(hs[:, src : src + hi - lo])
        rows = bufs[:, start:end].view(g_, -1, w.shape[1])
        gates = torch.bmm(rows, w)
        if bias is not None:  # added in the cell's precision, as the native loop's cell does
            gates = gates.to(cell) + bias.to(cell)[:, None]
        lo, hi, src = carry or (start, start, 0)
        here = slice(start, end)
        parts = (as_rows(acts[:, here]), as_rows(cs[:, here]), as_rows(tcs[:, here]), as_rows(hs[:, here]))
        step_cells(gates, all_cs if carry else None, (lo - start) * b, (hi - start) * b, src * b, *parts)
    return [hs, bufs, acts, cs, tcs]


def chunked_backward(
    dhs, acts, cs, tcs, w: torch.Tensor, inputs: int, plan: tuple[ChunkStep, ...]
) -> list[torch.Tensor]:
    """The chunked scan's backward loop: [the gates' pre-activation gradient and x's gradient, in
    w's dtype, and the bias gradient in float64]. The specification of (and fallback for) native
    `chunked_lstm_backward`."""
    g_, n_all, b, four = acts.shape
    ch = four // 4
    _, step_gradients = cells(acts)
    dpre = torch.empty(acts.shape, dtype=w.dtype, device=w.device)
    dx = torch.empty(g_, n_all, b, inputs, dtype=w.dtype, device=w.device)
    dh = torch.empty_like(cs).copy_(dhs)  # gradients into every h, the later steps' added
    dc = torch.zeros_like(cs)  # ... into every c from the step after
    all_cs, all_dc = as_rows(cs), as_rows(dc)
    wt = w.transpose(1, 2)
    for start, end, taps, carry in reversed(plan):
        here = slice(start, end)
        lo, hi, src = carry or (start, start, 0)
        step_gradients(
            *(as_rows(t[:, here]) for t in (dh, dc, acts, tcs)),
            all_cs if carry else None,
            (lo - start) * b,
            (hi - start) * b,
            src * b,
            as_rows(dpre[:, here]),
            all_dc if carry else None,
        )
        dbuf = torch.bmm(dpre[:, here].view(g_, -1, four), wt).view(g_, end - start, b, -1)
        dx[:, here] = dbuf[..., :inputs]
        dbuf = dbuf.to(dh.dtype)  # once: the adds below would each convert (1.02x)
        for tap, lo, hi, src in taps:
            columns = slice(inputs + tap * ch, inputs + (tap + 1) * ch)
            dh[:, src : src + hi - lo].add_(dbuf[:, lo - start : hi - start, :, columns])
    return [dpre, dx, dpre.sum((1, 2), dtype=torch.double)]


@functools.lru_cache(maxsize=32)
def flat_plan(plan: tuple[ChunkStep, ...]) -> tuple[int, ...]:
    """`chunk_plan`'s steps as one list of integers (what a C++ operator takes): per step start,
    end, the number of taps, (tap, lo, hi, src) per tap, then has_carry, lo, hi, src."""
    flat: list[int] = []
    for start, end, taps, carry in plan:
        flat += [
            start,
            end,
            len(taps),
            *(x for t in taps for x in t),
            carry is not None,
            *(carry or (0, 0, 0)),
        ]
    return tuple(flat)


class ChunkedLSTMScan(torch.autograd.Function):
    """h (G, N, B, ch) from inputs x (G, N, B, in), weight (G, in + K ch, 4 ch) and bias (G, 4 ch)
    or None: `LSTMScan` over packed positions, step t the consecutive positions of `chunk_plan`'s
    step t, each a contiguous (n_t B, ·) block, so every step is one matmul of just its own
    positions, its inputs and its neighbours' states together (the input-to-state part is not a
    separate matmul over all positions beforehand). The loops run in C++ where `chainrule.native`
    does (Diagonal BiLSTM training step, bf16, batch 64, 2 threads: 1.09-1.12x against the Python
    loop with the same C++ cell, in-process A/B, 2026-12-07), with each direction on a thread of
    its own where that is safe (`_threads_may_split`)."""

    @staticmethod
    def forward(
        ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, plan: tuple[ChunkStep, ...]
    ) -> torch.Tensor:
        w = weight.to(x.dtype)
        b = None if bias is None else bias.to(x.dtype)
        if native.available(x):
            hs, bufs, acts, cs, tcs = native.ops().chunked_lstm_forward(
                x.contiguous(), w.contiguous(), b, flat_plan(plan), _threads_may_split()
            )
        else:
            hs, bufs, acts, cs, tcs = chunked_forward(x, w, b, plan)
        ctx.plan, ctx.inputs = plan, x.shape[-1]
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        ctx.save_for_backward(bufs, acts, cs, tcs, w)
        return hs

    @staticmethod
    @torch.autograd.function.once_differentiable  # no graph of the backward (as the C++ loops)
    def backward(ctx, dhs: torch.Tensor):
        bufs, acts, cs, tcs, w = ctx.saved_tensors
        g_, n_all, b, four = acts.shape
        if native.available(acts):
            dpre, dx, dbias = native.ops().chunked_lstm_backward(
                dhs.contiguous(), acts, cs, tcs, w, ctx.inputs, flat_plan(ctx.plan), _threads_may_split()
            )
        else:
            dpre, dx, dbias = chunked_backward(dhs.contiguous(), acts, cs, tcs, w, ctx.inputs, ctx.plan)
        weight_dtype, bias_dtype = ctx.dtypes
        dweight = None
        if ctx.needs_input_grad[1]:
            rows = bufs.view(g_, n_all * b, -1).transpose(1, 2)
            dweight = torch.bmm(rows, dpre.view(g_, -1, four)).to(weight_dtype)
        return dx, dweight, None if bias_dtype is None else dbias.to(bias_dtype), None


def _threads_may_split() -> bool:
    """Whether the native loops may run each direction on a thread of its own: not while a Python
    dispatch mode (torch.utils.flop_counter, ...) or the profiler is on, which see only the
    operations of the calling thread."""
    return _len_torch_dispatch_stack() == 0 and not torch._C._autograd._profiler_enabled()


@torch.compiler.disable  # as `lstm_scan`
def chunked_lstm_scan(
    x: torch.Tensor,
    weight: torch.Tensor,
    chunks: tuple[tuple[int, int], ...],
    offsets: tuple[int, ...],
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hidden states (G, N, B, ch) of the LSTM recurrence over packed positions: x (G, N, B, in)
    holds the steps' inputs one after the other, step t the n_t positions labelled first_t,
    first_t + 1, ... (`chunks`: (n_t, first_t)); label r's pre-activations [o, f, i, g] are
    bias + [x_r, h(r + offsets[0]), h(r + offsets[1]), ...] @ weight, weight (G, in + K ch, 4 ch),
    from its input and the states of labels r + offsets[k] of the step before (zero where that
    step has no such label), and it carries the cell state of its own label. Under autocast the
    scan runs in autocast's dtype."""
    plan = chunk_plan(tuple(chunks), tuple(offsets))
    return _without_autocast(ChunkedLSTMScan, x.to(matmul_dtype(x)), weight, bias, plan)


def matmul_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype a matmul of t takes: autocast's where autocast is on for its device, else t's."""
    kind = t.device.type
    if torch.amp.is_autocast_available(kind) and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return t.dtype
