"""chainrule's C++ kernels (chainrule.native) against their pure-PyTorch twins, which are their
specification: the LSTM cell's forward and backward step on rows with partial carries, strided
directions, widths that are not a multiple of the vector length, and every precision."""

from __future__ import annotations

import shutil

import pytest
import torch

from chainrule import native
from chainrule.models.lstm_cell_step import cell_backward, cell_forward

needs_native = pytest.mark.skipif(
    not native.enabled() or shutil.which("c++") is None,
    reason="no C++ compiler or ninja here, or CHAINRULE_NATIVE=0: the PyTorch twins run instead",
)


@needs_native
def test_the_native_kernels_build_where_a_compiler_is() -> None:
    assert native.available(torch.zeros(1))
    assert not native.available(torch.zeros(1, device="meta"))


def _inputs(dtype: torch.dtype, cell: torch.dtype, ch: int, rows: int = 37, seed: int = 0):
    """Pre-activations of 2 directions as a strided slice (the scans' (G, steps, ...) buffers)."""
    gen = torch.Generator().manual_seed(seed)
    big = (torch.randn(2, 3, rows, 4 * ch, generator=gen, dtype=torch.float64) * 3).to(dtype)
    c_prev = torch.randn(2, rows + 5, ch, generator=gen, dtype=torch.float64).to(cell)
    return big[:, 1], c_prev  # G strided, each group's rows contiguous


def _outputs(rows: int, ch: int, cell: torch.dtype) -> list[torch.Tensor]:
    return [torch.full((2, rows, w), float("nan"), dtype=cell) for w in (4 * ch, ch, ch, ch)]


CASES = [  # (pre-activation dtype, cell dtype, tolerance)
    (torch.float64, torch.float64, 1e-13),
    (torch.float32, torch.float32, 2e-6),
    (torch.bfloat16, torch.float32, 2e-6),
]


@needs_native
@pytest.mark.parametrize(("dtype", "cell", "tol"), CASES)
@pytest.mark.parametrize("ch", [2, 16, 20])
@pytest.mark.parametrize("carry", [None, (0, 37, 5), (3, 30, 0)])
def test_native_cell_forward_is_its_twin(dtype, cell, tol, ch: int, carry) -> None:
    gates, c_prev = _inputs(dtype, cell, ch)
    lo, hi, src = carry or (0, 0, 0)
    before = c_prev if carry else None
    ours, theirs = _outputs(37, ch, cell), _outputs(37, ch, cell)
    native.ops().lstm_cell_forward(gates, before, lo, hi, src, *ours)
    cell_forward(gates, before, lo, hi, src, *theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=tol)


@needs_native
@pytest.mark.parametrize(("dtype", "cell", "tol"), CASES)
@pytest.mark.parametrize("ch", [2, 20])
@pytest.mark.parametrize("carry", [None, (0, 37, 5), (3, 30, 0)])
@pytest.mark.parametrize("in_place", [False, True])
def test_native_cell_backward_is_its_twin(dtype, cell, tol, ch: int, carry, in_place: bool) -> None:
    """The gradients into the pre-activations (in their own dtype) and into the carried state;
    `in_place`: the carried state's gradient written over dc itself, as the Row LSTM's scan does."""
    gates, c_prev = _inputs(dtype, cell, ch, seed=1)
    lo, hi, src = carry or (0, 0, 0)
    if in_place:
        c_prev = c_prev[:, :37].contiguous()
        lo, hi, src = (0, 37, 0) if carry else (0, 0, 0)
    before = c_prev if carry else None
    act, c, tc, h = _outputs(37, ch, cell)
    cell_forward(gates, before, lo, hi, src, act, c, tc, h)
    gen = torch.Generator().manual_seed(2)
    dh, dc = (torch.randn(2, 37, ch, generator=gen, dtype=torch.float64).to(cell) for _ in range(2))
    results = []
    for step in (native.ops().lstm_cell_backward, cell_backward):
        dpre = torch.full((2, 37, 4 * ch), float("nan"), dtype=dtype)
        dc_here = dc.clone()
        carried = (dc_here if in_place else torch.zeros_like(c_prev)) if carry else None
        step(dh, dc_here, act, tc, before, lo, hi, src, dpre, carried)
        results.append((dpre.to(cell), carried))
    (ours, ours_carried), (theirs, theirs_carried) = results
    assert torch.allclose(
        ours, theirs, rtol=0, atol=tol if dtype != torch.bfloat16 else 0.02 * theirs.abs().max()
    )
    if carry:
        assert torch.allclose(
            ours_carried[:, src : src + hi - lo], theirs_carried[:, src : src + hi - lo], rtol=0, atol=tol
        )


@needs_native
def test_native_cell_names_bad_shapes() -> None:
    gates = torch.zeros(1, 4, 8)
    parts = [torch.zeros(1, 4, 8), torch.zeros(1, 4, 2), torch.zeros(1, 4, 2), torch.zeros(1, 3, 2)]
    with pytest.raises(RuntimeError, match="state must be"):
        native.ops().lstm_cell_forward(gates, None, 0, 0, 0, *parts)


def test_a_failed_build_warns_and_the_pytorch_twins_run(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No compiler, or source that does not build: one warning, then the scans run their twins."""
    from chainrule.models.lstm_scan import lstm_scan

    broken = tmp_path / "broken.cpp"
    broken.write_text("this is not C++\n")
    monkeypatch.setattr(native, "SOURCES", (broken,))
    monkeypatch.setenv("CHAINRULE_NATIVE", "1")
    native._build.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="could not be built"):
            assert not native.available(torch.zeros(1))
        pre = torch.randn(1, 3, 2, 4, 8, dtype=torch.double)
        assert lstm_scan(pre, torch.zeros(1, 6, 8, dtype=torch.double), (-1, 0, 1)).shape == (1, 3, 2, 4, 2)
    finally:
        native._build.cache_clear()


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_chunked_scan_gives_the_same_on_two_threads(dtype: torch.dtype) -> None:
    """With two threads each direction's loop runs on a thread of its own: the same numbers as on
    one thread, forward and backward."""
    from chainrule.models.diagonal_bilstm import diagonal_chunks
    from chainrule.models.lstm_scan import chunked_lstm_scan

    gen = torch.Generator().manual_seed(5)
    chunks = diagonal_chunks(5, 6)
    x = torch.randn(2, 30, 3, 7, generator=gen).to(dtype).requires_grad_()
    weight = (torch.randn(2, 7 + 2 * 20, 4 * 20, generator=gen) * 0.3).requires_grad_()
    bias = torch.randn(2, 4 * 20, generator=gen).requires_grad_()
    upstream = torch.randn(2, 30, 3, 20, generator=gen)
    results, threads = [], torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            h = chunked_lstm_scan(x, weight, chunks, (-1, 0), bias)
            results.append((h, *torch.autograd.grad((h * upstream).sum(), (x, weight, bias))))
    finally:
        torch.set_num_threads(threads)
    (h1, dx1, dw1, db1), (h2, dx2, dw2, db2) = results
    assert torch.equal(h1, h2)
    assert torch.equal(dx1, dx2)
    assert torch.equal(db1, db2)  # summed step by step inside each direction's loop
    assert torch.allclose(dw1, dw2, rtol=1e-5, atol=1e-5)  # one matmul after the loops, split by threads


@needs_native
def test_two_threads_count_the_same_flops_and_work_in_inference_mode() -> None:
    """The directions' threads are used only where nothing watches the calling thread's
    operations: torch.utils.flop_counter counts the same FLOPs on one thread and two, and a
    scan under inference mode (the worker threads take the caller's state) runs on two."""
    from torch.utils.flop_counter import FlopCounterMode

    from chainrule.models.diagonal_bilstm import diagonal_chunks
    from chainrule.models.lstm_scan import chunked_lstm_scan

    chunks = diagonal_chunks(4, 5)
    pre = torch.randn(2, 20, 3, 5).requires_grad_()  # the inputs
    weight = torch.randn(2, 5 + 8, 16).requires_grad_()
    counts, threads = [], torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            with FlopCounterMode(display=False) as counter:
                chunked_lstm_scan(pre, weight, chunks, (-1, 0)).sum().backward()
            counts.append(counter.get_total_flops())
        with torch.inference_mode():
            inferred = chunked_lstm_scan(pre, weight, chunks, (-1, 0))
    finally:
        torch.set_num_threads(threads)
    assert counts[0] == counts[1] > 0
    assert torch.equal(inferred, chunked_lstm_scan(pre, weight, chunks, (-1, 0)).detach())


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_nan_pre_activation_gives_nan_states_as_the_twin_does(dtype: torch.dtype) -> None:
    """The fast exp clamps its input; NaN must still come out NaN (training skips non-finite losses)."""
    gates, c_prev = _inputs(dtype, torch.float32, 20)
    gates[0, 3, 5] = float("nan")  # the o gate of unit 5, row 3
    gates[1, 7, 3 * 20 + 2] = float("nan")  # the g gate of unit 2, row 7
    ours, theirs = _outputs(37, 20, torch.float32), _outputs(37, 20, torch.float32)
    native.ops().lstm_cell_forward(gates, c_prev, 0, 37, 5, *ours)
    cell_forward(gates, c_prev, 0, 37, 5, *theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a.isnan(), b.isnan())
    assert ours[3][0, 3, 5].isnan() and ours[3][1, 7, 2].isnan()


@needs_native
def test_a_carried_state_of_the_wrong_shape_is_refused() -> None:
    gates = torch.zeros(2, 4, 8)
    parts = [torch.zeros(2, 4, 8), torch.zeros(2, 4, 2), torch.zeros(2, 4, 2), torch.zeros(2, 4, 2)]
    for bad in (torch.zeros(1, 4, 2), torch.zeros(2, 4, 2).expand(2, 4, 2)[:, :, :1].expand(2, 4, 2)):
        with pytest.raises(RuntimeError, match="c_prev"):
            native.ops().lstm_cell_forward(gates, bad, 0, 4, 0, *parts)
    with pytest.raises(RuntimeError, match="scan plan"):
        native.ops().chunked_lstm_forward(
            torch.zeros(2, 3, 1, 1), torch.zeros(2, 5, 8), None, [0, 9, 0], False
        )


@needs_native
@pytest.mark.parametrize(
    "tap",
    # tap >= K, lo < start, src past the end, src < 0
    [(2, 1, 2, 0), (0, 0, 2, 0), (0, 1, 2, 3), (0, 1, 2, -1)],
)
def test_a_scan_plan_that_points_outside_the_tensors_is_refused(tap: tuple[int, ...]) -> None:
    """The loops copy rows by address: every copy a plan names is checked first."""
    x, w = torch.zeros(2, 2, 1, 1), torch.zeros(2, 1 + 4, 8)  # one input, K = 2 taps of 2 channels
    plan = [0, 1, 0, 0, 0, 0, 0, 1, 2, 1, *tap, 0, 0, 0, 0]  # step 0: no taps; step 1: one tap
    with pytest.raises(RuntimeError, match="scan plan tap"):
        native.ops().chunked_lstm_forward(x, w, None, plan, False)
    acts, states = torch.zeros(2, 2, 1, 8), torch.zeros(2, 2, 1, 2)
    with pytest.raises(RuntimeError, match="scan plan tap"):
        native.ops().chunked_lstm_backward(states, acts, states, states, w, 1, plan, False)
    with pytest.raises(RuntimeError, match="dhs, cs and tcs"):
        native.ops().chunked_lstm_backward(torch.zeros(2, 3, 1, 2), acts, states, states, w, 1, [], False)


@needs_native
def test_a_scan_plan_must_cover_the_positions_step_after_step() -> None:
    x, w = torch.zeros(2, 3, 1, 1), torch.zeros(2, 1 + 4, 8)
    with pytest.raises(RuntimeError, match="cover all 3 positions"):
        native.ops().chunked_lstm_forward(x, w, None, [0, 2, 0, 0, 0, 0, 0], False)
    with pytest.raises(RuntimeError, match="bad scan plan step"):  # a gap before the second step
        native.ops().chunked_lstm_forward(x, w, None, [0, 1, 0, 0, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0], False)
    with pytest.raises(RuntimeError, match="bad scan plan carry"):  # a carry from two steps back
        plan = [0, 1, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 2, 3, 0, 1, 2, 3, 0]
        native.ops().chunked_lstm_forward(x, w, None, plan, False)


@needs_native
def test_scan_weights_and_bias_of_the_wrong_shape_are_refused() -> None:
    x = torch.zeros(2, 1, 1, 3)
    with pytest.raises(RuntimeError, match="w must be"):  # 3 inputs + 2 taps of 2 channels = 7 rows
        native.ops().chunked_lstm_forward(x, torch.zeros(2, 6, 8), None, [0, 1, 0, 0, 0, 0, 0], False)
    with pytest.raises(RuntimeError, match="bias must be"):
        native.ops().chunked_lstm_forward(
            x, torch.zeros(2, 7, 8), torch.zeros(2, 4), [0, 1, 0, 0, 0, 0, 0], False
        )
    with pytest.raises(RuntimeError, match="in x's dtype"):
        native.ops().chunked_lstm_forward(
            x, torch.zeros(2, 7, 8).double(), None, [0, 1, 0, 0, 0, 0, 0], False
        )


def test_a_lock_left_by_a_killed_build_is_removed(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """torch waits forever for a build lock; one older than any build is a killed build's."""
    import os

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv("CHAINRULE_NATIVE", "1")
    broken = tmp_path / "broken.cpp"
    broken.write_text("this is not C++\n")
    monkeypatch.setattr(native, "SOURCES", (broken,))
    native._build.cache_clear()
    try:
        with pytest.warns(RuntimeWarning):
            native.available(torch.zeros(1))  # creates the build directory
        (lock,) = [d / "lock" for d in tmp_path.iterdir() if d.is_dir()]
        lock.write_text("")
        os.utime(lock, (0, 0))
        native._build.cache_clear()
        with pytest.warns(RuntimeWarning, match="could not be built"):  # it fails, but does not hang
            assert not native.available(torch.zeros(1))
    finally:
        native._build.cache_clear()
