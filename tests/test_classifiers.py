"""Classifiers without downloads: scikit-learn agreement on digits, missing-feature
marginalisation, Bayes rule over chainrule models, and clear errors for bad input."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.naive_bayes import BernoulliNB, MultinomialNB

from chainrule.classifiers import (
    BernoulliNaiveBayes,
    GenerativeClassifier,
    LogisticRegression,
    MLPClassifier,
    MultinomialNaiveBayes,
    log_loss,
    log_prior_from_labels,
)
from chainrule.data import load_dataset
from chainrule.errors import ChainruleError
from chainrule.models import NADE
from tests.conftest import all_binary, randomize


@pytest.fixture(scope="module")
def digits17():
    return load_dataset("digits-17")


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_naive_bayes_equals_sklearn_on_digits(digits17, alpha: float) -> None:
    d = digits17
    y, yt = d.labels["train"], d.labels["test"]
    nb = MultinomialNaiveBayes(alpha).fit(d.train, y)
    sk = MultinomialNB(alpha=alpha).fit(d.train.numpy(), y.numpy())
    lp = nb.predict_log_proba(d.test)
    assert torch.allclose(lp, torch.from_numpy(sk.predict_log_proba(d.test.numpy())), atol=1e-9)
    assert torch.equal(nb.predict(d.test), torch.from_numpy(sk.predict(d.test.numpy())))
    xb, xbt = (d.train >= 8).float(), (d.test >= 8).float()
    bnb = BernoulliNaiveBayes(alpha).fit(xb, y)
    skb = BernoulliNB(alpha=alpha).fit(xb.numpy(), y.numpy())
    assert torch.allclose(bnb.predict_log_proba(xbt), torch.from_numpy(skb.predict_log_proba(xbt.numpy())))
    assert bnb.score(xbt, yt) > 0.8


def test_multiclass_logistic_regression_matches_sklearn(digits17) -> None:
    d = digits17
    x, xt, y = d.train.double() / 16, d.test.double() / 16, d.labels["train"]  # sklearn: float64 too
    ours = LogisticRegression(C=0.5).fit(x, y)
    sk = SkLogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(x.numpy(), y.numpy())
    assert ours.converged
    p_ours, p_sk = ours.predict_proba(xt), torch.from_numpy(sk.predict_proba(xt.numpy()))
    assert (p_ours - p_sk).abs().max() < 1e-4
    assert torch.equal(ours.predict(xt), torch.from_numpy(sk.predict(xt.numpy())))


def _toy_counts(n: int = 300, d: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    rates = torch.rand(3, d, generator=g) * 3
    return torch.poisson(rates[y], generator=g), y


@pytest.mark.parametrize("kind", ["bernoulli", "multinomial"])
def test_missing_features_equal_naive_bayes_on_reduced_features(kind: str) -> None:
    x, y = _toy_counts()
    if kind == "bernoulli":
        x, cls = (x > 0).float(), BernoulliNaiveBayes
    else:
        cls = MultinomialNaiveBayes
    full = cls(alpha=0.7).fit(x, y)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):  # a different missing set each time
        missing = torch.rand(x.shape[1], generator=g) < 0.4
        x_nan = x.clone()
        x_nan[:, missing] = float("nan")
        reduced = cls(alpha=0.7).fit(x[:, ~missing], y)
        expected = reduced.predict_log_proba(x[:, ~missing])
        assert torch.allclose(full.predict_log_proba(x_nan), expected, atol=1e-10)
    # rows with different missing sets in one batch
    mask = torch.rand(x.shape, generator=g) < 0.5
    out = full.predict_log_proba(torch.where(mask, float("nan"), x))
    for i in range(10):
        keep = ~mask[i]
        ref = cls(alpha=0.7).fit(x[:, keep], y).predict_log_proba(x[i : i + 1, keep])
        assert torch.allclose(out[i : i + 1], ref, atol=1e-10)
    # nothing observed: the posterior is the prior
    empty = full.predict_log_proba(torch.full((1, x.shape[1]), float("nan")))
    assert torch.allclose(empty[0], full.class_log_prior)


def _nade_prob_by_hand(m: NADE, x: list[float]) -> float:
    """p(x) = prod_i sigmoid(b_i + V_i . sigmoid(c + W[:, :i] x[:i])) (natural order)."""
    w, c, v, b = (t.detach().double() for t in (m.W, m.c, m.V, m.b))
    xt = torch.tensor(x, dtype=torch.float64)
    prob = 1.0
    for i in range(len(x)):
        h = torch.sigmoid(c + w[:, :i] @ xt[:i])
        p1 = float(torch.sigmoid(b[i] + v[i] @ h))
        prob *= p1 if x[i] == 1 else 1 - p1
    return prob


def test_generative_classifier_is_bayes_rule_over_chainrule_models() -> None:
    models = [randomize(NADE(3, hidden=4).double(), seed=s) for s in (0, 1)]
    prior = [0.3, 0.7]
    clf = GenerativeClassifier(models, torch.tensor(prior, dtype=torch.float64).log())
    x = all_binary(3)
    post = clf.predict_proba(x)
    assert torch.allclose(post.sum(1), torch.ones(8, dtype=torch.float64))
    for i, row in enumerate(x.tolist()):
        joint = [prior[c] * _nade_prob_by_hand(models[c], row) for c in (0, 1)]
        assert math.isclose(float(post[i, 1]), joint[1] / sum(joint), rel_tol=1e-9)
    assert torch.equal(clf.predict(x), post.argmax(1))
    # unnormalised log-weights are accepted and normalised; None = uniform
    assert torch.allclose(
        GenerativeClassifier(models, [0.0, 0.0]).predict_proba(x),
        GenerativeClassifier(models).predict_proba(x),
    )


def test_log_prior_from_labels() -> None:
    lp = log_prior_from_labels(torch.tensor([0, 1, 1, 1]))
    assert torch.allclose(lp.exp(), torch.tensor([0.25, 0.75], dtype=torch.float64))
    with pytest.raises(ChainruleError, match="unknown label"):
        log_prior_from_labels(torch.tensor([0, 2]), num_classes=2)


def test_mlp_learns_a_nonlinear_boundary() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(400, 2, generator=g) * 2 - 1
    y = ((x[:, 0] * x[:, 1]) > 0).long()  # XOR of signs: no linear classifier does well
    mlp = MLPClassifier([32], weight_decay=1e-4, lr=1e-2, max_epochs=60, seed=0)
    mlp.fit(x[:300], y[:300], x[300:], y[300:])
    assert mlp.score(x[300:], y[300:]) > 0.9
    assert LogisticRegression(C=1.0).fit(x[:300], y[:300]).score(x[300:], y[300:]) < 0.75
    again = MLPClassifier([32], weight_decay=1e-4, lr=1e-2, max_epochs=60, seed=0).fit(
        x[:300], y[:300], x[300:], y[300:]
    )
    assert torch.equal(again.predict_log_proba(x), mlp.predict_log_proba(x))  # seeded
    assert log_loss(mlp.predict_log_proba(x[300:]), y[300:]) < 0.4


def test_bad_input_is_a_clear_error() -> None:
    x, y = _toy_counts(40, 5)
    xb = (x > 0).float()
    with pytest.raises(ChainruleError, match="binary"):
        BernoulliNaiveBayes().fit(x + 2, y)
    with pytest.raises(ChainruleError, match="non-negative"):
        MultinomialNaiveBayes().fit(-x - 1, y)
    with pytest.raises(ChainruleError, match="shape"):
        BernoulliNaiveBayes().fit(xb[0], y)
    with pytest.raises(ChainruleError, match="one label per example"):
        BernoulliNaiveBayes().fit(xb, y[:-1])
    with pytest.raises(ChainruleError, match="unknown label"):
        LogisticRegression(num_classes=2).fit(xb, y)
    with pytest.raises(ChainruleError, match="integer"):
        LogisticRegression().fit(xb, y.float() + 0.5)
    with pytest.raises(ChainruleError, match="not fitted"):
        BernoulliNaiveBayes().predict(xb)
    nb = BernoulliNaiveBayes().fit(xb, y)
    with pytest.raises(ChainruleError, match="fitted on 5"):
        nb.predict(xb[:, :4])
    x_nan = xb.clone()
    x_nan[0, 0] = float("nan")
    with pytest.raises(ChainruleError, match="NaN"):
        LogisticRegression().fit(x_nan, y)
    with pytest.raises(ChainruleError, match="NaN"):
        BernoulliNaiveBayes().fit(x_nan, y)  # missing values are for prediction only
    with pytest.raises(ChainruleError, match="alpha"):
        MultinomialNaiveBayes(alpha=0)
    with pytest.raises(ChainruleError, match="no training examples"):
        BernoulliNaiveBayes(num_classes=4).fit(xb, y)
    with pytest.raises(ChainruleError, match="log_prob"):
        GenerativeClassifier([object(), object()])
    with pytest.raises(ChainruleError, match="log_prior"):
        GenerativeClassifier([NADE(3, hidden=2), NADE(3, hidden=2)], [0.0, 0.0, 0.0])
    with pytest.raises(ChainruleError, match="shape"):
        GenerativeClassifier([NADE(3, hidden=2), NADE(3, hidden=2)]).predict(torch.zeros(2, 4))
