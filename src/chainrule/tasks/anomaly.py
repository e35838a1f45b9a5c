"""Out-of-distribution scores from any chainrule model: higher = more anomalous.

A model's likelihood alone is a poor OOD detector: a model trained on Fashion-MNIST gives MNIST
digits a *higher* likelihood than its own test images (Nalisnick et al. 2019), because the
likelihood is dominated by low-level statistics (how many pixels are background) that simple
images share. The scores here are the likelihood and three corrections:

- `nll` (nats) and `bits_per_dim`: -log p(x), and the same per dimension in bits (one ranking);
- `likelihood_ratio` (Ren et al. 2019): -(log p(x) - log p_bg(x)) with a *background model*
  trained on perturbed inputs (`train.perturb_rate`), which learns the low-level statistics
  but not the semantics; the ratio cancels what the two share;
- `input_complexity` (Serrà et al. 2020): -log₂ p(x) - L(x) with L(x) the bits of a lossless
  compression of x (`chainrule.tasks.compression`): a generic compressor's code length is a
  model of "any image", so this is a likelihood ratio against it;
- `typicality` (Nalisnick et al. 2019): |-log p(x) - Ĥ| with Ĥ the mean NLL on held-out
  in-distribution data: in high dimensions typical inputs have NLL near the entropy, and an
  input that is *too likely* is as atypical as one that is too unlikely. `batch_typicality`
  is the test on batches of M inputs, `typicality_threshold` its bootstrap threshold.

The pure functions take log-likelihoods (nats, float64) so that one pass of the model serves
every score; `log_likelihood` makes that pass and `score_inputs` computes them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm import tqdm

from chainrule.devices import draw, model_device
from chainrule.errors import ChainruleError
from chainrule.models.base import Model
from chainrule.tasks.compression import DEFAULT_COMPRESSOR, code_lengths
from chainrule.tasks.ood_metrics import OODMetrics, ood_metrics

#: Score names in the order tables show them.
SCORES = ("nll", "bits_per_dim", "likelihood_ratio", "input_complexity", "typicality")


@torch.no_grad()
def log_likelihood(
    model: Model, x: torch.Tensor, batch_size: int = 500, desc: str = "log p(x)", **log_prob_kwargs
) -> torch.Tensor:
    """log p(x) of every row of `x` (N, D) in nats, float64 on the CPU, in batches with a progress
    bar (on a terminal); each batch is moved to the model's device, so a model on a GPU scores
    CPU-held data. `log_prob_kwargs` go to `model.log_prob` (a VAE's `k` and `generator`)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ChainruleError(f"batch size must be a positive integer, got {batch_size!r}")
    if x.dim() != 2 or x.shape[1] != math.prod(model.event_shape):
        raise ChainruleError(
            f"inputs of shape {tuple(x.shape)} do not fit the model's"
            f" {math.prod(model.event_shape)} dimensions"
        )
    model.eval()
    device = model_device(model)
    parts = []
    starts = range(0, len(x), batch_size)
    for i in tqdm(starts, desc=desc, disable=None, leave=False, unit="batch"):
        parts.append(model.log_prob(x[i : i + batch_size].to(device), **log_prob_kwargs).double().cpu())
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def nll_score(log_p: torch.Tensor) -> torch.Tensor:
    """-log p(x) in nats: the raw likelihood score."""
    return -log_p


def bits_per_dim_score(log_p: torch.Tensor, dim: int) -> torch.Tensor:
    """-log₂ p(x) / D: the NLL per dimension in bits (ranks inputs exactly as `nll_score`)."""
    return -log_p / (math.log(2) * dim)


def likelihood_ratio_score(log_p: torch.Tensor, log_p_background: torch.Tensor) -> torch.Tensor:
    """-(log p(x) - log p_bg(x)) in nats (Ren et al. 2019): high when the model explains x no
    better than the background model of perturbed inputs does."""
    if log_p.shape != log_p_background.shape:
        raise ChainruleError(
            f"{tuple(log_p.shape)} log-likelihoods but {tuple(log_p_background.shape)} background ones"
        )
    return -(log_p - log_p_background)


def input_complexity_score(log_p: torch.Tensor, code_bits: torch.Tensor) -> torch.Tensor:
    """S(x) = -log₂ p(x) - L(x) in bits (Serrà et al. 2020), L(x) = lossless code length in bits."""
    if log_p.shape != code_bits.shape:
        raise ChainruleError(
            f"{tuple(log_p.shape)} log-likelihoods but {tuple(code_bits.shape)} code lengths"
        )
    return -log_p / math.log(2) - code_bits


def typicality_score(nll: torch.Tensor, reference_nll_mean: float) -> torch.Tensor:
    """|NLL(x) - Ĥ| per input (nats), Ĥ = mean NLL on held-out in-distribution data."""
    return (nll - float(reference_nll_mean)).abs()


def batch_typicality(
    nll: torch.Tensor, reference_nll_mean: float, m: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The typicality test statistic of Nalisnick et al. (2019) on batches of `m` inputs:
    |mean NLL of the batch - Ĥ|, for len(nll) // m disjoint batches drawn at random (seeded by
    `generator`; the remainder is left out). Averaging over a batch shrinks the in-distribution
    spread by √m, so the test separates what one input cannot."""
    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        raise ChainruleError(f"the batch size M must be a positive integer, got {m!r}")
    if len(nll) < m:
        raise ChainruleError(f"need at least M={m} inputs for one batch, got {len(nll)}")
    order = draw(torch.randperm, len(nll), generator=generator, device=nll.device)[: len(nll) // m * m]
    return (nll[order].reshape(-1, m).mean(1) - float(reference_nll_mean)).abs()


def typicality_threshold(
    reference_nll: torch.Tensor,
    m: int,
    alpha: float = 0.99,
    bootstraps: int = 1000,
    generator: torch.Generator | None = None,
) -> float:
    """The `alpha` quantile of `batch_typicality` on bootstrap batches (drawn with replacement) of
    held-out in-distribution NLLs: a batch scoring above it is called OOD, wrongly for about a
    1 - alpha share of in-distribution batches."""
    if not 0.0 < alpha < 1.0:
        raise ChainruleError(f"alpha must be in (0, 1), got {alpha!r}")
    if not isinstance(m, int) or isinstance(m, bool) or m < 1:
        raise ChainruleError(f"the batch size M must be a positive integer, got {m!r}")
    if len(reference_nll) < 2:
        raise ChainruleError("the bootstrap needs at least 2 held-out NLLs")
    mean = float(reference_nll.mean())
    idx = draw(
        torch.randint, len(reference_nll), (bootstraps, m), generator=generator, device=reference_nll.device
    )
    stats = (reference_nll[idx].mean(1) - mean).abs()
    return float(torch.quantile(stats, alpha))


def score_inputs(
    model: Model,
    x: torch.Tensor,
    *,
    reference_nll_mean: float,
    background: Model | None = None,
    compressor: str | None = DEFAULT_COMPRESSOR,
    image_shape: tuple[int, ...] | None = None,
    batch_size: int = 500,
    log_prob_kwargs: dict | None = None,
    name: str = "inputs",
) -> dict[str, torch.Tensor]:
    """Every score of every row of `x` (N, D), as {score name: (N,) float64}, in SCORES order.

    `likelihood_ratio` needs a `background` model; `input_complexity` a `compressor` (None skips
    it) and discrete values (it is skipped for continuous models). `image_shape` defaults to the
    model's; `log_prob_kwargs` go to both models' `log_prob`."""
    kwargs = log_prob_kwargs or {}
    log_p = log_likelihood(model, x, batch_size, desc=f"log p({name})", **kwargs)
    log_bg = bits = None
    if background is not None:
        check_same_kind(model, background)
        log_bg = log_likelihood(background, x, batch_size, desc=f"log p_bg({name})", **kwargs)
    if compressor is not None and model.num_values >= 2:
        shape = image_shape or model.image_shape
        bits = code_lengths(x, shape, model.num_values, compressor, progress={"desc": f"compressing {name}"})
    return scores_from_log_likelihoods(
        log_p,
        dim=math.prod(model.event_shape),
        reference_nll_mean=reference_nll_mean,
        log_p_background=log_bg,
        code_bits=bits,
    )


def scores_from_log_likelihoods(
    log_p: torch.Tensor,
    *,
    dim: int,
    reference_nll_mean: float,
    log_p_background: torch.Tensor | None = None,
    code_bits: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The scores from log-likelihoods already computed (nats, (N,)), by any density model of
    D = `dim` dimensions; `likelihood_ratio` only with `log_p_background`, `input_complexity`
    only with `code_bits` (see `chainrule.tasks.compression.code_lengths`)."""
    nll = nll_score(log_p)
    scores = {"nll": nll, "bits_per_dim": bits_per_dim_score(log_p, dim)}
    if log_p_background is not None:
        scores["likelihood_ratio"] = likelihood_ratio_score(log_p, log_p_background)
    if code_bits is not None:
        scores["input_complexity"] = input_complexity_score(log_p, code_bits)
    scores["typicality"] = typicality_score(nll, reference_nll_mean)
    return scores


@dataclass
class OODComparison:
    """Per-input scores of in-distribution and OOD inputs, and each score's metrics."""

    scores_in: dict[str, torch.Tensor]
    scores_ood: dict[str, torch.Tensor]
    reference_nll_mean: float
    metrics: dict[str, OODMetrics]

    def summary(self) -> dict[str, dict[str, float]]:
        """{score: {auroc, aupr, fpr_at_95_tpr, mean_in, mean_ood}} (for JSON output)."""
        return {
            k: {
                **m.as_dict(),
                "mean_in": float(self.scores_in[k].mean()),
                "mean_ood": float(self.scores_ood[k].mean()),
            }
            for k, m in self.metrics.items()
        }


def compare_ood(
    model: Model,
    x_in: torch.Tensor,
    x_ood: torch.Tensor,
    x_reference: torch.Tensor,
    **score_kwargs,
) -> OODComparison:
    """Score in-distribution test inputs `x_in` and OOD inputs `x_ood`; the typicality reference
    Ĥ is the mean NLL of held-out in-distribution inputs `x_reference` (not `x_in`). Keyword
    arguments go to `score_inputs`."""
    kwargs = {k: v for k, v in score_kwargs.items() if k != "reference_nll_mean"}
    lp_kwargs = kwargs.get("log_prob_kwargs") or {}
    batch = kwargs.get("batch_size", 500)
    reference = float(-log_likelihood(model, x_reference, batch, "log p(reference)", **lp_kwargs).mean())
    scores_in = score_inputs(model, x_in, reference_nll_mean=reference, name="in", **kwargs)
    scores_ood = score_inputs(model, x_ood, reference_nll_mean=reference, name="ood", **kwargs)
    metrics = {k: ood_metrics(scores_in[k], scores_ood[k]) for k in scores_in}
    return OODComparison(scores_in, scores_ood, reference, metrics)


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """The metrics as an aligned text table, one row a score."""
    head = f"{'score':<22}{'AUROC':>8}{'AUPR':>8}{'FPR@95':>8}{'mean in':>12}{'mean OOD':>12}"
    rows = [
        f"{k:<22}{v['auroc']:>8.4f}{v['aupr']:>8.4f}{v['fpr_at_95_tpr']:>8.4f}{v['mean_in']:>12.2f}"
        f"{v['mean_ood']:>12.2f}"
        for k, v in summary.items()
    ]
    return "\n".join([head, *rows])


def describe_values(num_values: int) -> str:
    """'binary', 'continuous' or 'K-level': how the messages name a value type."""
    return "binary" if num_values == 2 else "continuous" if num_values == 0 else f"{num_values}-level"


def describe_shape(shape: tuple[int, ...] | None, dim: int) -> str:
    """'28x28 images' (or '28x28x3') when there is an image shape, else 'D dimensions'."""
    return "x".join(map(str, shape)) + " images" if shape else f"{dim} dimensions"


def check_same_kind(model: Model, background: Model) -> None:
    """A background model must model the same events (shape and value type) as the model."""
    if tuple(background.event_shape) != tuple(model.event_shape) or tuple(
        background.image_shape or ()
    ) != tuple(model.image_shape or ()):
        raise ChainruleError(
            "the background model has "
            + describe_shape(background.image_shape, math.prod(background.event_shape))
            + "; the model has "
            + describe_shape(model.image_shape, math.prod(model.event_shape))
        )
    if background.num_values != model.num_values:
        raise ChainruleError(
            f"the background model is {describe_values(background.num_values)} but the model is"
            f" {describe_values(model.num_values)}: both must model the same values"
        )


def check_data_fits(model: Model, dataset, name: str) -> None:
    """Refuse a dataset whose examples the model cannot score: sequences, another image size or
    dimension, another value type (binary vs 8-bit)."""
    from chainrule.data import SequenceDataset

    if isinstance(dataset, SequenceDataset):
        raise ChainruleError(f"dataset {name!r} holds sequences; the model scores fixed-size examples")
    model_shape = tuple(model.image_shape or ())
    data_shape = tuple(dataset.image_shape or ())
    dim = math.prod(model.event_shape)
    if (model_shape and data_shape and model_shape != data_shape) or dataset.dim != dim:
        raise ChainruleError(
            f"dataset {name!r} has {describe_shape(data_shape, dataset.dim)}; the model was trained on"
            f" {describe_shape(model_shape, dim)}"
        )
    if dataset.num_values != model.num_values:
        from chainrule.data import DATASETS

        base = name.removeprefix("binarized-").removesuffix("-8bit")
        views = [f"binarized-{base}"] if model.num_values == 2 else [base, f"{base}-8bit"]
        known = [v for v in views if v in DATASETS and v != name]
        hint = f" (score {known[0]!r} instead)" if known else ""
        raise ChainruleError(
            f"dataset {name!r} holds {describe_values(dataset.num_values)} values but the model is"
            f" {describe_values(model.num_values)}{hint}"
        )
