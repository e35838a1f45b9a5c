"""Detecting adversarial inputs by their likelihood rank (Song et al. 2018, PixelDefend).

Adversarial perturbations push images off the data manifold, where a good density model gives
them low likelihood. With N reference (training) images, the p-value of an input x is the
fraction of the N + 1 images {reference, x} whose log-likelihood is at most x's:

    p(x) = (1 + #{reference images r: log p(r) <= log p(x)}) / (N + 1).

For an input from the training distribution p is (nearly) uniform on {1/(N+1), ..., 1};
adversarial inputs get small p. The detection AUROC is the probability that a random
adversarial input gets a smaller p-value than a random clean one (ties count one half).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from chainrule.errors import ChainruleError
from chainrule.models.base import Model


def log_likelihoods(
    model: Model, x: torch.Tensor, batch_size: int = 256, progress: bool = False, desc: str = "log p(x)"
) -> torch.Tensor:
    """log p(x) of every row (nats, float64), in eval mode without gradients."""
    if batch_size < 1:
        raise ChainruleError(f"batch_size must be at least 1, got {batch_size}")
    model.eval()
    out = []
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        for xb in tqdm(x.split(batch_size), desc=desc, disable=not progress, leave=False):
            out.append(model.log_prob(xb.to(dtype)).double())
    return torch.cat(out)


def rank_p_values(log_lik: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """p = (1 + #{reference <= log_lik}) / (N + 1) for every entry of `log_lik` (float64)."""
    log_lik, reference = torch.as_tensor(log_lik).double(), torch.as_tensor(reference).double()
    if reference.dim() != 1 or reference.numel() == 0:
        raise ChainruleError("reference must be a non-empty 1-D tensor of log-likelihoods")
    if torch.isnan(reference).any() or torch.isnan(log_lik).any():
        raise ChainruleError("log-likelihoods contain NaN")
    ranked = torch.sort(reference).values
    at_most = torch.searchsorted(ranked, log_lik, right=True)  # #{reference <= value}
    return (1.0 + at_most.double()) / (reference.numel() + 1.0)


def detection_auroc(p_clean: torch.Tensor, p_adversarial: torch.Tensor) -> float:
    """P(p_adv < p_clean) + ½ P(p_adv = p_clean): AUROC of flagging small p-values as adversarial
    (Mann-Whitney U over all clean × adversarial pairs, computed from ranks)."""
    a = torch.as_tensor(p_adversarial).double().flatten()
    c = torch.as_tensor(p_clean).double().flatten()
    if a.numel() == 0 or c.numel() == 0:
        raise ChainruleError("detection AUROC needs at least one clean and one adversarial p-value")
    c_sorted = torch.sort(c).values
    greater = c.numel() - torch.searchsorted(c_sorted, a, right=True)  # clean p-values > each adv one
    ties = torch.searchsorted(c_sorted, a, right=True) - torch.searchsorted(c_sorted, a, right=False)
    return float((greater.double() + 0.5 * ties.double()).sum() / (a.numel() * c.numel()))
