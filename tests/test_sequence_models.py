"""Sequence models (char-RNN, causal Transformer, WaveNet): exactness, the autoregressive
property, cached == uncached generation, streaming evaluation, and the "hello" toy."""

# The contract suite (tests/contract) checks each family's tiny_config() (a 1-layer LSTM, a rotary
# Transformer, a WaveNet); exactness here runs only the other variants (2 layers, GRU, learned positions).

from __future__ import annotations

import itertools

import pytest
import torch

from chainrule.evaluation import evaluate_sequence
from chainrule.models import CausalTransformer, CharRNN, RNNAttention, WaveNet
from chainrule.models.sequence import filter_logits, sample_next
from chainrule.training import make_adam
from tests.conftest import randomize


def tiny_models(vocab: int = 3) -> dict[str, torch.nn.Module]:
    """One small instance of every sequence-model variant, float64, random weights."""
    models = {
        "lstm": CharRNN(vocab, embed=5, hidden=8, layers=2),
        "gru": CharRNN(vocab, cell="gru", embed=5, hidden=8),
        "tanh": CharRNN(vocab, cell="tanh", embed=5, hidden=8, layers=2),
        "rnn-attention-gru": RNNAttention(vocab, cell="gru", embed=5, hidden=8, attention=4, window=4),
        "rnn-attention-unbounded": RNNAttention(vocab, embed=5, hidden=8, attention=4, window=None),
        "transformer-rotary": CausalTransformer(vocab, d_model=16, layers=2, heads=2, block_size=6),
        "transformer-learned": CausalTransformer(
            vocab, d_model=16, layers=2, heads=2, block_size=7, positions="learned", tie_weights=False
        ),
        "wavenet": WaveNet(vocab, channels=8, skip_channels=8, dilations=[1, 2, 4, 1]),
    }
    return {k: randomize(m.double(), std=0.5, seed=i) for i, (k, m) in enumerate(models.items())}


MODELS = tiny_models()
#: the variants whose exactness the contract suite does not already check
BEYOND_CONTRACT = [
    "lstm",
    "gru",
    "tanh",
    "rnn-attention-gru",
    "rnn-attention-unbounded",
    "transformer-learned",
]


def all_sequences(vocab: int, length: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(vocab), repeat=length)))


@pytest.mark.parametrize("name", BEYOND_CONTRACT)
def test_probabilities_of_all_sequences_of_each_length_sum_to_one(name: str) -> None:
    """Exhaustive: all 3^T sequences for T = 1..4 (beyond the Transformers' half block of 3)."""
    model = MODELS[name]
    for length in range(1, 5):
        total = model.log_prob(all_sequences(3, length)).exp().sum().item()
        assert total == pytest.approx(1.0, abs=1e-12), length


@pytest.mark.parametrize("name", BEYOND_CONTRACT)
def test_output_at_t_does_not_depend_on_inputs_at_t_or_later(name: str) -> None:
    """d logits(x_t) / d embedding(x_s) is zero for every s >= t and non-zero for most s < t."""
    model, T = MODELS[name], 6
    x = torch.randint(0, 3, (1, T), generator=torch.Generator().manual_seed(0))
    inputs = torch.cat([model.bos_column(1), x[:, :-1]], 1)  # input j holds x_{j-1}
    emb = model.embedding(inputs).detach()

    def logits_of(e: torch.Tensor) -> torch.Tensor:
        handle = model.embedding.register_forward_hook(lambda mod, args, out: e[None])
        try:
            return model(inputs)[0].sum(-1)  # (T,) one scalar per position
        finally:
            handle.remove()

    J = torch.autograd.functional.jacobian(logits_of, emb[0]).abs().sum(-1)  # J[t, j]
    for t in range(T):
        for s in range(T):  # x_s is input j = s + 1
            if s + 1 < T:
                dependence = J[t, s + 1]
                if s >= t:
                    assert dependence == 0, f"output {t} depends on x_{s}"
    allowed = torch.tensor([[j <= t for j in range(T)] for t in range(T)])
    assert (J[allowed] > 0).float().mean() > 0.9


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("sampling", [{}, {"temperature": 0.7, "top_k": 2, "top_p": 0.9}, {"temperature": 0}])
def test_cached_generation_returns_the_uncached_tokens(name: str, sampling: dict) -> None:
    """30 new tokens after a 2-token prompt: longer than the Transformers' block (their window
    moves and the KV cache is rebuilt) and than the WaveNet's receptive field (9)."""
    model = MODELS[name]
    prompt = torch.tensor([0, 2])
    runs = [
        model.generate(prompt, 30, batch=4, generator=torch.Generator().manual_seed(3), cache=c, **sampling)
        for c in (True, False)
    ]
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0][:, :2], prompt.expand(4, 2))


@pytest.mark.parametrize("name", list(MODELS))
def test_log_prob_equals_the_generators_conditionals(name: str) -> None:
    """log p(x) from chunked scoring = sum of log-softmax of the next-token logits that the
    cached generator computes, for a sequence 4x longer than the Transformers' block."""
    model = MODELS[name]
    x = torch.randint(0, 3, (2, 25), generator=torch.Generator().manual_seed(1))
    seq = torch.cat([model.bos_column(2), x], 1)
    logits, cache = model.prefill(seq[:, :1])
    total = torch.zeros(2, dtype=torch.float64)
    for t in range(25):
        total += torch.log_softmax(logits, -1).gather(1, x[:, t : t + 1])[:, 0]
        if t < 24:
            logits, cache = model.step(seq[:, : t + 2], cache)
    assert torch.allclose(model.log_prob(x), total, atol=1e-10)


@pytest.mark.parametrize("name", list(MODELS))
def test_streaming_evaluation_scores_every_token_once(name: str) -> None:
    """evaluate_sequence with 3 parallel streams = log_prob of the 3 parts (12, 12 and 11 tokens)."""
    model = MODELS[name]
    tokens = torch.randint(0, 3, (35,), generator=torch.Generator().manual_seed(2))
    rep = evaluate_sequence(model, tokens, streams=3)
    parts = [tokens[:12], tokens[12:24], tokens[24:]]
    expected = -sum(model.log_prob(p[None]).item() for p in parts)
    assert rep.tokens == 35 and rep.total_nats == pytest.approx(expected, abs=1e-9)
    assert rep.nats_per_token == pytest.approx(expected / 35)
    assert rep.as_dict()["bits_per_char"] == pytest.approx(expected / 35 / 0.6931471805599453)


@pytest.mark.parametrize("name", ["gru", "transformer-learned"])
def test_sample_frequencies_match_probabilities(name: str) -> None:
    model = MODELS[name]
    n = 20000
    x = model.sample(n, length=2, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(x[:, 0] * 3 + x[:, 1], minlength=9).double() / n
    p = model.log_prob(all_sequences(3, 2)).exp()
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt() + 1e-12).all(), (freq, p)


def test_prefix_completion_keeps_the_prefix() -> None:
    model = MODELS["gru"]
    given = torch.tensor([[1, 2, 0, 0, 0]] * 3)
    out = model.sample(3, given=given, mask=torch.tensor([True, True, False, False, False]))
    assert out.shape == (3, 5) and torch.equal(out[:, :2], given[:, :2])


def test_hello_toy() -> None:
    """A char-RNN trained on "hello" continues "h" greedily with "ello"."""
    torch.manual_seed(0)
    model = CharRNN(vocab="helo", embed=8, hidden=32)
    x = model.encode("hello")[None]
    opt = make_adam(model.parameters(), lr=0.03)
    for _ in range(150):
        opt.zero_grad()
        (-model.log_prob(x).mean()).backward()
        opt.step()
    out = model.generate(model.encode("h"), 4, temperature=0)
    assert model.decode(out[0]) == "hello"


def test_top_k_top_p_and_temperature() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    keep = lambda **kw: torch.isfinite(filter_logits(logits, **kw))[0].tolist()  # noqa: E731
    assert keep(top_k=2) == [True, True, False, False]
    assert keep(top_p=0.5) == [True, False, False, False]
    assert keep(top_p=0.8) == [True, True, False, False]
    assert keep(top_p=0.81) == [True, True, True, False]
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_next(logits, g, top_k=2) for _ in range(2000)])
    assert set(draws.unique().tolist()) == {0, 1}
    assert (draws == 0).float().mean().item() == pytest.approx(0.5 / 0.8, abs=0.04)
    assert sample_next(logits, None, temperature=0).item() == 0


def test_rnn_begin_reads_a_long_prefix() -> None:
    """begin(prefix) + chunk scoring = scoring the prefix and the chunk in one go."""
    model = MODELS["lstm"]
    x = torch.randint(0, 3, (2, 12), generator=torch.Generator().manual_seed(4))
    whole = model.log_prob(x)
    head = model.log_prob(x[:, :5])
    state = model.begin(torch.cat([model.bos_column(2), x[:, :5]], 1))
    tail = model.chunk_log_prob(x[:, 5:], state)[0].sum(-1)
    assert torch.allclose(whole, head + tail, atol=1e-12)


@pytest.mark.parametrize("name", ["lstm", "transformer-rotary", "wavenet"])
def test_bad_token_input_is_a_clear_error(name: str) -> None:
    from chainrule.errors import ChainruleError

    model = MODELS[name]
    with pytest.raises(ChainruleError, match=r"integers in \[0, 2\]"):
        model.log_prob(torch.tensor([[0, 3]]))
    with pytest.raises(ChainruleError, match="shape"):
        model.log_prob(torch.zeros(2, 0))
    with pytest.raises(ChainruleError, match="NaN"):
        model.log_prob(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ChainruleError, match="new tokens must be an integer >= 0"):
        model.generate(None, -1)
    assert model.generate(torch.tensor([1, 2]), 0).tolist() == [[1, 2]]  # n = 0: the prompt
    with pytest.raises(ChainruleError, match="prefixes only"):
        model.sample(2, given=torch.zeros(2, 3), mask=torch.tensor([False, True, False]))


def test_rotary_transformer_trains_after_evaluation_under_inference_mode() -> None:
    """Lightning validates under torch.inference_mode before training: the rotary tables that
    evaluation builds and keeps must still be usable by a training step's backward pass."""
    model = CausalTransformer(3, d_model=8, layers=1, heads=2, block_size=6)
    x = torch.randint(0, 3, (2, 6), generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        model.log_prob(x)
    (-model.log_prob(x).mean()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_kv_cache_refuses_positions_beyond_its_capacity() -> None:
    from chainrule.nn import KVCache

    cache = KVCache(torch.zeros(1, 2, 3, 4), torch.ones(1, 2, 3, 4), capacity=4)
    k, v = cache.append(torch.full((1, 2, 1, 4), 2.0), torch.full((1, 2, 1, 4), 3.0))
    assert cache.length == 4 and k[0, 0, :, 0].tolist() == [0, 0, 0, 2] and v[0, 0, -1, 0] == 3
    with pytest.raises(ValueError, match="KV cache full"):
        cache.append(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 1, 4))
