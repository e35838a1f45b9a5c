"""SMS spam: the file, its fixed split, the features, and Naive Bayes / logistic regression
against scikit-learn with identical features and smoothing."""

from __future__ import annotations

import pytest
import torch
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.naive_bayes import BernoulliNB, MultinomialNB

from chainrule.classifiers import BernoulliNaiveBayes, LogisticRegression, MultinomialNaiveBayes
from chainrule.data.sms_spam import SMS_SPAM, Vocabulary, read_sms_spam, sms_spam, tokenize
from chainrule.errors import ChainruleError


@pytest.fixture(scope="module")
def features():
    d = sms_spam()
    vocab = Vocabulary(d.train_text, min_count=2)
    return d, vocab, vocab.counts(d.train_text), vocab.counts(d.test_text)


@pytest.mark.network
def test_file_and_fixed_split(features) -> None:
    d, vocab, xc, xt = features
    texts, labels = read_sms_spam()
    assert len(texts) == 4862 and sum(labels) == 642
    assert len(d.train_text) + len(d.test_text) == 4862
    assert int(d.test_labels.sum()) == 160 and len(d.test_text) == 1215  # 25 % of each class
    assert d.test_text == sms_spam().test_text  # fixed
    assert not any("&lt;" in t for t in texts)  # HTML entities decoded
    assert (
        xc.shape == (3647, len(vocab))
        and (xc >= 0).all()
        and torch.equal(vocab.presence(d.test_text), (xt > 0).float())
    )


@pytest.mark.network
@pytest.mark.parametrize("alpha", [1.0, 0.1])
def test_naive_bayes_matches_sklearn(features, alpha: float) -> None:
    d, _, xc, xt = features
    y, yt = d.train_labels, d.test_labels
    for ours, theirs, tr, te in (
        (MultinomialNaiveBayes(alpha), MultinomialNB(alpha=alpha), xc, xt),
        (BernoulliNaiveBayes(alpha), BernoulliNB(alpha=alpha), (xc > 0).float(), (xt > 0).float()),
    ):
        pred = ours.fit(tr, y).predict(te)
        sk_pred = torch.from_numpy(theirs.fit(tr.numpy(), y.numpy()).predict(te.numpy()))
        acc, sk_acc = (pred == yt).double().mean(), (sk_pred == yt).double().mean()
        assert abs(acc - sk_acc) <= 0.005 and acc > 0.97
        assert (pred == sk_pred).double().mean() >= 0.999


@pytest.mark.network
def test_logistic_regression_matches_sklearn(features) -> None:
    d, _, xc, xt = features
    xb, xbt = (xc > 0).double(), (xt > 0).double()  # float64 for both fits
    ours = LogisticRegression(C=1.0).fit(xb, d.train_labels)
    sk = SkLogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(xb.numpy(), d.train_labels.numpy())
    pred, sk_pred = ours.predict(xbt), torch.from_numpy(sk.predict(xbt.numpy()))
    acc, sk_acc = (pred == d.test_labels).double().mean(), (sk_pred == d.test_labels).double().mean()
    assert ours.converged and abs(acc - sk_acc) <= 0.005 and acc > 0.97
    assert (
        ours.predict_proba(xbt)[:, 1] - torch.from_numpy(sk.predict_proba(xbt.numpy())[:, 1])
    ).abs().max() < 1e-4


def test_tokenizer_and_vocabulary() -> None:
    assert tokenize("WINNER!! Call 09061701461 to claim £900 now. I'm here") == [
        "winner", "call", "09061701461", "to", "claim", "£900", "now", "i'm", "here",
    ]  # fmt: skip
    vocab = Vocabulary(["a b b", "b c"], min_count=2)
    assert vocab.words == ["b"] and vocab.counts(["b b z"]).tolist() == [[2.0]]
    with pytest.raises(ChainruleError, match="empty"):
        Vocabulary(["a"], min_count=2)


def test_bad_file_is_a_clear_error(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("ham\thello\nspam-ish\tbuy now\n", encoding="utf-8")
    with pytest.raises(ChainruleError, match="row 2"):
        read_sms_spam(str(bad))
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    (tmp_path / SMS_SPAM.filename).write_text("not the file")
    with pytest.raises(ChainruleError, match="wrong checksum"):
        SMS_SPAM.fetch()
