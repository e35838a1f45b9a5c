"""MaskedLinear's row-block path: the same values and gradients as one dense masked matmul, in
float64 exactly enough and under bf16 autocast, and models large enough to use it still pass the
contract's dependency, sampler and mode checks (the contract's tiny models are below one block)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from chainrule import kernel_choice, masked_linear
from chainrule.checks import check_model
from chainrule.masked_linear import MaskedLinear, _plain, row_blocks, triangle
from chainrule.models import FVSBN, MADE
from chainrule.nn import strictly_lower_mask


def staircase_masks() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randint(1, 500, (900,), generator=g).sort().values
    inputs = torch.arange(1, 501)
    return {
        "fvsbn": strictly_lower_mask(600),
        "fvsbn-3-ary": torch.kron(strictly_lower_mask(200), torch.ones(3, 3)),
        "made-first": (hidden[:, None] >= inputs[None]).float(),
        "made-output": (inputs[:, None] > hidden[None]).float(),
    }


def layer_pair(mask: torch.Tensor, dtype=torch.float64) -> tuple[MaskedLinear, torch.Tensor]:
    torch.manual_seed(1)
    layer = MaskedLinear(mask.shape[1], mask.shape[0]).to(dtype)
    layer.set_mask(mask)
    return layer, torch.randn(32, mask.shape[1], dtype=dtype)


@pytest.mark.parametrize("name", list(staircase_masks()))
def test_row_blocks_give_the_dense_values_and_gradients(name: str, monkeypatch) -> None:
    monkeypatch.setattr(masked_linear, "TRIANGLE_BLOCK_ROWS_PER_THREAD", 0)  # blocks for any batch
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # ... and threads (fp32 triangles)
    mask = staircase_masks()[name]
    layer, x = layer_pair(mask)
    assert layer.blocks is not None and len(layer.blocks) > 1
    work = sum((r1 - r0) * c for r0, r1, c, _ in layer.blocks) / mask.numel()
    assert work < 0.85
    assert any(full > 0 for *_, full in layer.blocks)  # leading columns taken unmasked
    x.requires_grad_()
    y = layer(x)
    seed = torch.randn_like(y)
    got = torch.autograd.grad((y * seed).sum(), [x, layer.weight, layer.bias])
    dense = F.linear(x, layer.weight * layer.mask, layer.bias)
    want = torch.autograd.grad((dense * seed).sum(), [x, layer.weight, layer.bias])
    torch.testing.assert_close(y, dense, rtol=0, atol=1e-12)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-11)
    assert torch.all(got[1][mask == 0] == 0)  # masked-out weights get exactly no gradient
    plain = _plain(x, layer.weight, layer.mask, layer.bias, layer.blocks)  # the torch.compile path
    torch.testing.assert_close(plain, dense, rtol=0, atol=1e-12)


def test_row_blocks_under_bf16_autocast_match_the_dense_layer() -> None:
    layer, x = layer_pair(staircase_masks()["made-first"], torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
        dense = F.linear(x, layer.weight * layer.mask, layer.bias)
    assert y.dtype == dense.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), dense.float(), rtol=2e-2, atol=2e-2)
    y.float().sum().backward()
    assert layer.weight.grad.dtype == torch.float32 and layer.bias.grad.dtype == torch.float32
    assert torch.all(layer.weight.grad[layer.mask == 0] == 0)


def test_masks_without_a_staircase_take_one_dense_matmul() -> None:
    g = torch.Generator().manual_seed(0)
    assert row_blocks((torch.rand(800, 500, generator=g) < 0.5).float()) is None  # unsorted
    assert row_blocks(torch.ones(800, 500)) is None
    assert row_blocks(strictly_lower_mask(100)) is None  # one block's worth of rows


@pytest.mark.parametrize(
    "model",
    [
        FVSBN(400),
        FVSBN(200, num_values=3),
        MADE(400, hidden=[768, 768]),
        MADE(400, hidden=[768], num_values=3),
    ],
    ids=["fvsbn", "fvsbn-3-ary", "made-2-layers", "made-3-ary"],
)
def test_models_that_use_row_blocks_keep_the_contract(model) -> None:
    layers = [m for m in model.modules() if isinstance(m, MaskedLinear)]
    assert all(layer.blocks is not None for layer in layers)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    model = model.double()
    assert all(layer.blocks is not None for layer in layers)  # kept through a dtype change
    passed = check_model(
        model,
        checks=["check_autoregressive_dependency", "check_fast_equals_generic", "check_mode_independence"],
    )
    assert len(passed) == 3


def test_made_masks_follow_the_degrees_it_loads() -> None:
    """Masks are derived from the degree buffers; a file's degrees (e.g. a model saved before
    mask 0's hidden degrees were sorted) must rebuild them on load, not keep the constructor's."""
    saved = MADE(400, hidden=[768], seed=3)
    with torch.no_grad():
        saved.hidden_degrees_0[0] = saved.hidden_degrees_0[0][torch.randperm(768)]  # unsorted
    saved.use_mask(0)
    loaded = MADE(400, hidden=[768], seed=3)
    loaded.load_state_dict(saved.state_dict())
    x = torch.bernoulli(torch.full((8, 400), 0.3))
    torch.testing.assert_close(loaded.log_prob(x), saved.log_prob(x))
    assert loaded.layers[0].blocks is None  # unsorted degrees: no staircase, one dense matmul


def test_triangle_finds_exactly_the_triangular_masks() -> None:
    assert triangle(strictly_lower_mask(300)) == -1
    assert triangle(torch.ones(300, 300).tril()) == 0
    assert triangle(torch.ones(200, 300).tril(5)) == 5
    masks = staircase_masks()
    assert triangle(masks["fvsbn-3-ary"]) is None  # a staircase of 3 x 3 steps is no triangle
    assert triangle(masks["made-first"]) is None
    bent = strictly_lower_mask(300)
    bent[250, 3] = 0
    assert triangle(bent) is None


@pytest.mark.parametrize("dim", [100, 600], ids=["dense", "blocks"])
@pytest.mark.parametrize("diagonal", [-1, 0])
def test_a_triangular_mask_gives_the_masked_product_and_gradients(dim: int, diagonal: int) -> None:
    """`tril` in place of the mask product: the same values and gradients, in float64 exactly
    enough and under bf16 autocast (where the weight gradient is widened, then tril'd)."""
    mask = torch.ones(dim, dim).tril(diagonal)
    layer, x = layer_pair(mask)
    assert layer.diagonal == diagonal and (layer.blocks is not None) == (dim == 600)
    y = layer(x)
    seed = torch.randn_like(y)
    got = torch.autograd.grad((y * seed).sum(), [layer.weight, layer.bias])
    dense = F.linear(x, layer.weight * layer.mask, layer.bias)
    want = torch.autograd.grad((dense * seed).sum(), [layer.weight, layer.bias])
    torch.testing.assert_close(y, dense, rtol=0, atol=1e-12)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-11)
    layer, x = layer.float(), x.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
        dense = F.linear(x, layer.weight * layer.mask, layer.bias)
    assert y.dtype == dense.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), dense.float(), rtol=2e-2, atol=2e-2)
    (y.float() * seed.float()).sum().backward()
    assert layer.weight.grad.dtype == torch.float32
    assert torch.all(layer.weight.grad[layer.mask == 0] == 0)
    assert torch.count_nonzero(layer.weight.grad[layer.mask == 1]) > 0.99 * layer.mask.sum()


def test_made_keeps_its_members_masks_and_rebuilds_them_after_a_dtype_change() -> None:
    """Switching member reuses the masks built the first time (same values as building them
    afresh), and a model moved to another dtype builds them again in that dtype."""
    model = MADE(300, hidden=[400], num_masks=3, ordering="random", seed=2)
    x = torch.bernoulli(torch.full((6, 300), 0.4))
    fresh = []
    for m in range(3):
        model.use_mask(m)
        fresh.append((model.training_log_prob(x), [layer.mask for layer in [*model.layers, model.out]]))
    for m in (2, 0, 1):
        model.use_mask(m)
        masks = [layer.mask for layer in [*model.layers, model.out]]
        assert all(a is b for a, b in zip(masks, fresh[m][1]))  # kept, not rebuilt
        torch.testing.assert_close(model.training_log_prob(x), fresh[m][0], rtol=0, atol=0)
    model = model.double()
    for m in range(3):
        model.use_mask(m)
        assert all(layer.mask.dtype == torch.float64 for layer in [*model.layers, model.out])
        torch.testing.assert_close(model.training_log_prob(x.double()).float(), fresh[m][0])


def value_and_gradients(
    model: torch.nn.Module, fn, x: torch.Tensor, bf16: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """`fn(x)` in float32 (under bf16 autocast if `bf16`) and the gradients of its sum for every
    parameter of `model`, from zero: what a compiled objective is compared with eager on."""
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = fn(x)
    out.float().sum().backward()
    return out.detach().float(), [p.grad.clone() for p in model.parameters()]


def test_compiled_bf16_made_matches_eager_for_every_member() -> None:
    """Under torch.compile and bf16 autocast a masked layer with a staircase (the sorted first
    member's first layer) runs its eager row blocks outside the graph, the others one dense
    matmul with the mask and the cast fused; values and gradients are those of the eager layers,
    and masked-out weights get none."""
    from chainrule.compiling import compiled_or_eager

    torch.manual_seed(0)
    model = MADE(30, hidden=[400], num_masks=2, seed=1)
    assert model.layers[0].blocks is not None  # a staircase: eager blocks, outside the graph
    x = torch.bernoulli(torch.full((16, 30), 0.4))
    objective = compiled_or_eager(model.training_log_prob, static=False)
    for member in (0, 1, 0):
        model.use_mask(member)
        (got, got_grads), (want, want_grads) = (
            value_and_gradients(model, fn, x, bf16=True) for fn in (objective, model.training_log_prob)
        )
        torch.testing.assert_close(got, want, rtol=2e-2, atol=0.1)
        for g, w in zip(got_grads, want_grads):
            torch.testing.assert_close(g, w, rtol=5e-2, atol=0.1)
        for layer in [*model.layers, model.out]:
            assert torch.all(layer.weight.grad[layer.mask == 0] == 0)


def test_compiled_fp32_triangle_runs_outside_the_graph_with_the_eager_values() -> None:
    """Under torch.compile an fp32 triangle with row blocks (FVSBN) runs the eager layer outside
    the graph (which times its blocks against one matmul with several threads); values and
    gradients are the eager layer's, and the masked-out (upper) weights get exactly no gradient."""
    from chainrule.compiling import compiled_or_eager

    torch.manual_seed(0)
    model = FVSBN(400)
    with torch.no_grad():
        model.linear.weight.normal_(0, 0.05)
        model.linear.bias.normal_(0, 0.1)
    assert model.linear.blocks is not None and model.linear.diagonal == -1
    x = torch.bernoulli(torch.full((16, 400), 0.4))
    (got, got_grads), (want, want_grads) = (
        value_and_gradients(model, fn, x)
        for fn in (compiled_or_eager(model.training_log_prob, static=False), model.training_log_prob)
    )
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    assert torch.all(got_grads[0][model.linear.mask == 0] == 0)

    linears = []

    def count_linears(gm: torch.fx.GraphModule, _inputs) -> torch.fx.GraphModule:
        linears.append(sum(node.target is F.linear for node in gm.graph.nodes))
        return gm

    torch.compile(model.linear, backend=count_linears)(x)
    assert sum(linears) == 0  # no matmul in a graph: the layer ran outside it


def test_compiled_bf16_triangle_reads_no_mask_and_gives_the_eager_values() -> None:
    """Under torch.compile and bf16 autocast a triangle (FVSBN) is one dense matmul of the weight's
    `tril` (no mask read, forward or gradient): values and gradients agree with the eager bf16
    layer's within bf16 rounding, and the masked-out weights get exactly no gradient."""
    from chainrule.compiling import compiled_or_eager

    torch.manual_seed(0)
    model = FVSBN(300)
    with torch.no_grad():
        model.linear.weight.normal_(0, 0.05)
        model.linear.bias.normal_(0, 0.1)
    x = torch.bernoulli(torch.full((16, 300), 0.4))
    (got, got_grads), (want, want_grads) = (
        value_and_gradients(model, fn, x, bf16=True)
        for fn in (compiled_or_eager(model.training_log_prob, static=False), model.training_log_prob)
    )
    torch.testing.assert_close(got, want, rtol=1e-2, atol=0.5)
    for g, w in zip(got_grads, want_grads):
        torch.testing.assert_close(g, w, rtol=2e-2, atol=2e-2)
    assert torch.all(got_grads[0][model.linear.mask == 0] == 0)

    ops = []

    def record(gm: torch.fx.GraphModule, _inputs) -> torch.fx.GraphModule:
        ops.extend(str(node.target) for node in gm.graph.nodes if node.op == "call_method")
        ops.extend(
            getattr(node.target, "__name__", "") for node in gm.graph.nodes if node.op == "call_function"
        )
        return gm

    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.compile(model.linear, backend=record)(x)
    assert "tril" in ops and "mul" not in ops and ops.count("linear") == 1


@pytest.mark.parametrize("rows_per_thread", [0, 10**6], ids=["blocks", "dense"])
def test_bf16_triangle_in_blocks_matches_the_dense_bf16_layer(rows_per_thread: int, monkeypatch) -> None:
    """An FVSBN-sized triangle under bf16 autocast is cast once and multiplied in row blocks of
    that copy (or, for a batch too small for the threads, in one matmul): values and all three
    gradients are those of the dense bf16 product, and the upper triangle's weights get exactly
    no gradient (its unwritten block corners included)."""
    monkeypatch.setattr(masked_linear, "TRIANGLE_BLOCK_ROWS_PER_THREAD", rows_per_thread)
    seen, plain = [], masked_linear.blocked_linear
    monkeypatch.setattr(
        masked_linear, "blocked_linear", lambda x, w, b, blocks: seen.append(blocks) or plain(x, w, b, blocks)
    )
    torch.manual_seed(0)
    layer = MaskedLinear(400, 400)
    layer.set_mask(strictly_lower_mask(400))
    assert layer.blocks is not None and layer.diagonal == -1
    x = torch.bernoulli(torch.full((24, 400), 0.4)).requires_grad_()
    results = []
    for blocked in (True, False):
        layer.zero_grad()
        x.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x) if blocked else F.linear(x, layer.weight * layer.mask, layer.bias)
        seed = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
        (y.float() * seed).sum().backward()
        results.append((y.float(), x.grad.clone(), layer.weight.grad.clone(), layer.bias.grad.clone()))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-2, atol=2e-2)
    assert torch.all(results[0][2][layer.mask == 0] == 0)
    assert seen == [layer.blocks if rows_per_thread == 0 else None]


def test_triangle_blocks_pay_only_for_enough_rows_per_thread() -> None:
    """A triangle takes its row blocks in eager mode from 128 rows of the batch per thread; in
    fp32 with several threads, from 128 rows, only if timing says so (None)."""
    before = torch.get_num_threads()
    cases = [(1, 128, True), (1, 127, False), (2, 128, False), (2, 256, True), (2, 4096, True)]
    try:
        for threads, rows, pays in cases:
            torch.set_num_threads(threads)
            assert masked_linear.triangle_blocks_pay(torch.zeros(rows, 3), reduced=True) == pays
            fp32_pays = pays if threads == 1 else (None if rows >= 128 else False)
            assert masked_linear.triangle_blocks_pay(torch.zeros(rows, 3), reduced=False) == fp32_pays
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("winner", ["one matmul", "row blocks"])
def test_fp32_triangle_with_several_threads_takes_the_kernel_found_faster(winner: str, monkeypatch) -> None:
    """With two threads an fp32 triangle asks `kernel_choice.in_use` whether its blocks or one
    matmul is faster in use, takes that one, and gives the masked product's values and gradients
    either way."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    asked, reported = [], []
    monkeypatch.setattr(masked_linear, "in_use", lambda key, names: asked.append(names) or (winner, True))
    monkeypatch.setattr(kernel_choice, "report", lambda key, name, seconds: reported.append(name))
    kernel_choice.forget()
    used = []
    for name in ("_TriangleLinearFn", "_BlockedMaskedLinearFn"):
        original = getattr(masked_linear, name).apply
        monkeypatch.setattr(
            getattr(masked_linear, name), "apply", lambda *a, _n=name, _f=original: used.append(_n) or _f(*a)
        )
    torch.manual_seed(0)
    layer = MaskedLinear(400, 400)
    layer.set_mask(strictly_lower_mask(400))
    assert layer.blocks is not None and layer.diagonal is not None
    x = torch.bernoulli(torch.full((128, 400), 0.4))
    y = layer(x)
    want = "_BlockedMaskedLinearFn" if winner == "row blocks" else "_TriangleLinearFn"
    assert used == [want] and asked == [("one matmul", "row blocks")]
    seed = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
    assert reported == []  # timed to the end of the optimizer step after the backward
    (y * seed).sum().backward()
    assert reported == []
    torch.optim.SGD(layer.parameters(), lr=0.0).step()
    assert reported == [winner]
    w = layer.weight.detach().requires_grad_()
    b = layer.bias.detach().requires_grad_()
    ref = F.linear(x, w * layer.mask, b)
    (ref * seed).sum().backward()
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(layer.weight.grad, w.grad)
    torch.testing.assert_close(layer.bias.grad, b.grad)
    assert torch.all(layer.weight.grad[layer.mask == 0] == 0)
    with torch.no_grad():
        layer(x)
    assert reported == [winner, winner]  # without gradients: the forward alone


@pytest.mark.parametrize("rows_per_thread", [0, 10**6], ids=["blocks", "dense"])
@pytest.mark.parametrize("shape", [(24, 400), (3, 8, 400)], ids=["2d", "3d"])
def test_fp32_triangle_below_the_block_threshold_takes_the_lean_triangle_function(
    rows_per_thread: int, shape: tuple[int, ...], monkeypatch
) -> None:
    """An fp32 triangle whose batch is small for the threads (or whose input is not 2-D, which
    has no blocks) is `_TriangleLinearFn`; with enough rows it keeps its blocked function. Both
    give the masked product's values and all three gradients, and the weight no gradient above
    the diagonal."""
    monkeypatch.setattr(masked_linear, "TRIANGLE_BLOCK_ROWS_PER_THREAD", rows_per_thread)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # fp32 blocks are for one thread
    torch.manual_seed(0)
    layer = MaskedLinear(400, 400)
    layer.set_mask(strictly_lower_mask(400))
    x = torch.bernoulli(torch.full(shape, 0.4)).requires_grad_()
    y = layer(x)
    blocked = rows_per_thread == 0 and len(shape) == 2
    want_fn = "_BlockedMaskedLinearFnBackward" if blocked else "_TriangleLinearFnBackward"
    assert type(y.grad_fn).__name__ == want_fn
    seed = torch.randn_like(y)
    got = torch.autograd.grad((y * seed).sum(), [x, layer.weight, layer.bias])
    dense = F.linear(x, layer.weight * layer.mask, layer.bias)
    want = torch.autograd.grad((dense * seed).sum(), [x, layer.weight, layer.bias])
    torch.testing.assert_close(y, dense)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    assert torch.all(got[1][layer.mask == 0] == 0)
