"""The arithmetic coder: exact round trips on random and extreme distributions, code lengths
within a few bits of the quantised model's ideal, and a hypothesis property test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.coding.arithmetic import (
    MAX_TOTAL,
    ArithmeticDecoder,
    ArithmeticEncoder,
    ideal_bits,
    quantise_cdf,
)
from chainrule.errors import ChainruleError


def round_trip(probs: np.ndarray, symbols: np.ndarray) -> tuple[np.ndarray, bytes, np.ndarray]:
    cum = quantise_cdf(probs)
    encoder = ArithmeticEncoder()
    encoder.encode_rows(cum, symbols)
    code = encoder.finish()
    decoder = ArithmeticDecoder(code)
    return decoder.decode_rows(cum), code, cum


@pytest.mark.parametrize("k", [2, 3, 17, 65, 256])
def test_random_distributions_round_trip_near_ideal_length(k):
    rng = np.random.default_rng(k)
    n = 3000
    probs = rng.dirichlet(np.full(k, 0.5), size=n)
    symbols = np.array([rng.choice(k, p=p) for p in probs])
    decoded, code, cum = round_trip(probs, symbols)
    assert np.array_equal(decoded, symbols)
    ideal = ideal_bits(cum, symbols)
    assert ideal <= 8 * len(code) <= ideal + 2 + 8  # 2 flush bits, byte padding
    exact = -np.log2(probs[np.arange(n), symbols]).sum()
    assert 8 * len(code) <= exact * 1.01 + 10


def test_extreme_probabilities_every_symbol_stays_codable():
    """Probabilities 0, 1e-300, 1 - 1e-15, NaN and inf: every symbol still has a count >= 1, and
    even the 'impossible' symbols round-trip (at about 16 bits each)."""
    rows = [
        [1.0, 0.0],
        [0.0, 1.0],
        [1 - 1e-15, 1e-15],
        [1e-300, 1.0],
        [np.nan, 0.5],
        [np.inf, 1.0],
        [0.0, 0.0],
    ]
    probs = np.array(rows * 50)
    rng = np.random.default_rng(0)
    symbols = rng.integers(0, 2, len(probs))
    decoded, code, cum = round_trip(probs, symbols)
    assert np.array_equal(decoded, symbols)
    counts = np.diff(cum, axis=1)
    assert counts.min() >= 1 and cum[:, -1].max() <= MAX_TOTAL
    certain = np.zeros(1000, dtype=np.int64)  # the likely symbol of a p = 1 - 1e-15 coin: ~0 bits each
    decoded, code, _ = round_trip(np.tile([[1 - 1e-15, 1e-15]], (1000, 1)), certain)
    assert np.array_equal(decoded, certain) and len(code) <= 2


def test_long_runs_of_underflow_and_skewed_categoricals():
    k = 256
    probs = np.full((2000, k), 1e-9)
    probs[:, 128] = 1.0  # the interval keeps straddling the middle
    symbols = np.where(np.arange(2000) % 97 == 0, 0, 128)
    decoded, _, _ = round_trip(probs, symbols)
    assert np.array_equal(decoded, symbols)


def test_bad_counts_and_symbols_are_clear_errors():
    with pytest.raises(ChainruleError, match="invalid symbol counts"):
        ArithmeticEncoder().encode(3, 3, 10)
    with pytest.raises(ChainruleError, match="symbols must lie"):
        ArithmeticEncoder().encode_rows(quantise_cdf(np.array([[0.5, 0.5]])), np.array([2]))
    with pytest.raises(ChainruleError, match="cannot quantise"):
        quantise_cdf(np.ones((1, 1)))


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(2, 40),
    data=st.data(),
)
def test_property_any_distributions_and_message_round_trip(k, data):
    n = data.draw(st.integers(1, 60))
    weights = data.draw(
        st.lists(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=k, max_size=k), min_size=n, max_size=n)
    )
    symbols = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    probs = np.array(weights, dtype=np.float64)
    decoded, code, cum = round_trip(probs, symbols)
    assert np.array_equal(decoded, symbols)
    assert 8 * len(code) <= ideal_bits(cum, symbols) + 10
