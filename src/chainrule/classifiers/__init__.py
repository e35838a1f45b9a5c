"""Classifiers: Naive Bayes, logistic regression, MLP, a small CNN, and any density per class through
Bayes rule.

All take features as a float tensor (N, D) and labels as integers 0..K-1 (N,), and return
`predict_log_proba(x) -> (N, K)`; `predict(x)` is its argmax.
"""

from chainrule.classifiers.base import Classifier, check_features, check_labels
from chainrule.classifiers.bayes_rule import GenerativeClassifier, log_prior_from_labels
from chainrule.classifiers.cnn import CNNClassifier
from chainrule.classifiers.logistic import LogisticRegression
from chainrule.classifiers.metrics import accuracy, log_loss
from chainrule.classifiers.mlp import MLPClassifier
from chainrule.classifiers.naive_bayes import BernoulliNaiveBayes, MultinomialNaiveBayes
from chainrule.classifiers.train_config import ClassifierTrainConfig
from chainrule.persistence import load_classifier, save_classifier

__all__ = [
    "BernoulliNaiveBayes",
    "CNNClassifier",
    "Classifier",
    "ClassifierTrainConfig",
    "GenerativeClassifier",
    "LogisticRegression",
    "MLPClassifier",
    "MultinomialNaiveBayes",
    "accuracy",
    "check_features",
    "check_labels",
    "load_classifier",
    "log_loss",
    "log_prior_from_labels",
    "save_classifier",
]
