"""Devices without a GPU: sampling, completion and evaluation keep to the model's device.

A model moved to the `meta` device (shapes, no data) stands in for one on a GPU: a tensor made
on the CPU by mistake then meets it, and `SameDevice` refuses that like CUDA does (plain meta
lets some mixes through). It also refuses a random draw made off its generator's device, which
torch ignores on meta but refuses on CUDA. Data-dependent steps (value checks, `.tolist()`) cannot
run on meta, so value checks are skipped for meta tensors and models whose sampling order lives
in a buffer (MADE, RNADE) are left to scripts/cuda_check.py on a real GPU.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import chainrule.distributions
import chainrule.models.vae
from chainrule.devices import draw_device, first_parameter, model_device
from chainrule.evaluation import evaluate_nll
from chainrule.models import MODEL_REGISTRY, build_model
from chainrule.models.base import Model
from chainrule.tasks.anomaly import log_likelihood
from chainrule.tasks.classify import class_log_likelihoods
from chainrule.training import evaluation_device
from tests.conftest import randomize

#: ops that move data between devices on purpose
COPIES = {"_to_copy", "copy_", "_copy_from", "_copy_from_and_resize", "lift_fresh"}


class SameDevice(TorchDispatchMode):
    """Refuse an op whose tensors sit on two devices (CPU scalars aside, as CUDA allows), and a
    random draw made on another device than its generator's."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket.__name__ in COPIES:
            return out
        leaves = tree_flatten((args, kwargs or {}))[0] + tree_flatten(out)[0]
        devices = {
            t.device
            for t in leaves
            if isinstance(t, torch.Tensor) and not (t.device.type == "cpu" and t.dim() == 0)
        }
        assert len(devices) <= 1, f"{func}: tensors on {sorted(map(str, devices))}"
        for g in leaves:
            if isinstance(g, torch.Generator):
                assert devices <= {g.device}, f"{func}: a draw on {devices} with a generator on {g.device}"
        return out


def skipped_on_meta(check):
    """`check` for tensors with values, nothing for meta tensors."""
    return lambda x, *args, **kwargs: None if x.device.type == "meta" else check(x, *args, **kwargs)


@pytest.fixture
def no_value_checks_on_meta(monkeypatch):
    """Value checks read the data, which meta tensors do not hold: skip them there only."""
    for module in (chainrule.distributions, chainrule.models.vae):
        for name in ("check_finite", "check_discrete"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, skipped_on_meta(getattr(module, name)))


IMG = [4, 4]
PIX = {"image_shape": IMG, "channels": 4, "output_channels": 4}
#: (registry name, options) of models whose sampling runs on meta
CASES = {
    "fvsbn": ("fvsbn", {"dim": 6}),
    "fvsbn-categorical": ("fvsbn", {"dim": 6, "num_values": 3}),
    "nade": ("nade", {"dim": 6, "hidden": 5}),
    "categorical-nade": ("categorical-nade", {"dim": 6, "num_values": 3, "hidden": 5}),
    "gaussian": ("gaussian", {"dim": 3}),
    "gaussian-mixture": ("gaussian-mixture", {"dim": 3, "components": 2}),
    "vae": ("vae", {"dim": 6, "latent": 2, "hidden": [8]}),
    "pixelcnn": ("pixelcnn", {**PIX, "blocks": 1}),
    "gated-pixelcnn": ("gated-pixelcnn", {**PIX, "layers": 2}),
    "row-lstm": ("row-lstm", {**PIX, "layers": 1}),
    "diagonal-bilstm": ("diagonal-bilstm", {**PIX, "layers": 1}),
    "transformer": ("transformer", {"num_values": 5, "d_model": 8, "layers": 1, "heads": 2}),
}
#: autoregressive samplers with a fast and a generic method
TWO_METHODS = {"fvsbn", "fvsbn-categorical", "nade", "categorical-nade", "pixelcnn", "gated-pixelcnn"}
TWO_METHODS |= {"row-lstm", "diagonal-bilstm", "transformer"}
#: completion on meta (not the Gaussians': they group rows by observed pattern, which reads the data)
COMPLETES = sorted(set(CASES) - {"gaussian", "gaussian-mixture", "transformer"})


def on_meta(row: str) -> Model:
    name, options = CASES[row]
    return randomize(build_model(name, **options).float()).to("meta")


def test_draw_device_is_the_generators_else_where_the_values_are_used() -> None:
    assert draw_device(None, "meta") == torch.device("meta")
    assert draw_device(torch.Generator(), torch.device("meta")) == torch.device("cpu")
    assert model_device(torch.nn.Linear(2, 2).to("meta")) == torch.device("meta")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")


@pytest.mark.parametrize("seeded", [True, False], ids=["cpu-generator", "no-generator"])
@pytest.mark.parametrize("row", sorted(CASES))
def test_sampling_stays_on_the_models_device(row: str, seeded: bool) -> None:
    """Every draw and buffer of sampling meets the model on its device (a CPU generator's draws
    are made on the CPU and moved); what comes back is on the model's device."""
    model = on_meta(row)
    methods = ["fast", "generic"] if row in TWO_METHODS else [None]
    for method in methods:
        kw = {} if method is None else {"method": method}
        if row == "transformer":
            kw["length"] = 5
        g = torch.Generator().manual_seed(0) if seeded else None
        with SameDevice():
            out = model.sample(3, generator=g, **kw)
        assert out.device.type == "meta", (row, method)


@pytest.mark.usefixtures("no_value_checks_on_meta")
@pytest.mark.parametrize("row", COMPLETES)
def test_completion_of_cpu_held_data_stays_on_the_models_device(row: str) -> None:
    """`given` and `mask` held on the CPU are moved to the model's device for completion."""
    model = on_meta(row)
    given = torch.zeros(3, *model.event_shape)
    mask = torch.zeros(model.event_shape, dtype=torch.bool)
    mask.view(-1)[:2] = True
    with SameDevice():
        out = model.sample(3, given=given, mask=mask, generator=torch.Generator().manual_seed(1))
    assert out.device.type == "meta"


@pytest.mark.parametrize("row", sorted(CASES))
def test_log_prob_of_cpu_held_data_runs_on_the_models_device(row: str) -> None:
    """`model.log_prob(x)` with x on the CPU and the model elsewhere: prepare() checks the values
    where they are and moves them, instead of torch failing deep inside on mixed devices."""
    model = on_meta(row)
    x = torch.zeros(3, *(model.event_shape if row != "transformer" else (5,)))
    with SameDevice():
        out = model.log_prob(x)
    assert out.device.type == "meta" and out.shape == (3,)


class DeviceProbe(Model):
    """A stand-in model with its weight on meta: log_prob checks that its inputs were moved there
    and answers -1 per row (on the CPU: meta tensors hold no values to bring back)."""

    event_shape = (4,)

    def __init__(self, num_classes: int = 0) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(4, device="meta"))
        self.num_classes = num_classes
        self.conditioned_on = "class" if num_classes else "nothing"
        self.seen: list[str] = []

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(x.device.type)
        if cond is not None:
            self.seen.append(cond.device.type)
        return torch.full((x.shape[0],), -1.0)


def test_evaluation_moves_each_batch_to_the_models_device_and_returns_cpu_float64() -> None:
    x = torch.zeros(5, 4)
    probe = DeviceProbe()
    rep = evaluate_nll(probe, x, batch_size=2)
    assert rep.nll_nats == 1.0 and rep.n == 5
    lp = log_likelihood(probe, x, batch_size=2)
    assert lp.dtype == torch.float64 and lp.device.type == "cpu" and lp.tolist() == [-1.0] * 5
    conditional = DeviceProbe(num_classes=2)
    evaluate_nll(conditional, x, batch_size=2, cond=torch.zeros(5, dtype=torch.long))
    ll = class_log_likelihoods(conditional, x, batch_size=2, progress=False)
    assert ll.shape == (5, 2) and ll.dtype == torch.float64 and ll.device.type == "cpu"
    assert set(probe.seen + conditional.seen) == {"meta"}


def test_the_test_nll_after_training_is_computed_where_training_ran(monkeypatch) -> None:
    assert evaluation_device("cpu") == "cpu"
    assert evaluation_device("gpu") == "cuda"
    assert evaluation_device("cuda") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert evaluation_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert evaluation_device("auto") == "cuda"


@pytest.mark.parametrize("row", ["fvsbn-categorical", "vae", "gaussian-mixture", "gated-pixelcnn"])
def test_cpu_and_float64_sampling_is_seeded_as_before(row: str) -> None:
    """On the CPU the draws are made exactly as before the device handling: the same seed gives
    the same samples, in float32 and float64, and the fast sampler equals the generic one."""
    name, options = CASES[row]
    for dtype in (torch.float32, torch.float64):
        model = randomize(build_model(name, **options).to(dtype))
        kw = {"method": "generic"} if row in TWO_METHODS else {}
        a = model.sample(4, generator=torch.Generator().manual_seed(3))
        b = model.sample(4, generator=torch.Generator().manual_seed(3), **kw)
        assert a.dtype == dtype and torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_first_parameter_is_the_first_of_parameters(name: str) -> None:
    """The per-batch lookup finds the parameter `parameters()` yields first (the one whose dtype
    and device the model's inputs take), for every registered model, and None without any."""
    model = build_model(name, **MODEL_REGISTRY[name].tiny_config())
    assert first_parameter(model) is next(model.parameters(), None)
    assert first_parameter(torch.nn.Sequential(torch.nn.ReLU())) is None
