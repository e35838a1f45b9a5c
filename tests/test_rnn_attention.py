"""The plain tanh RNN (the notes' equations, by hand) and readable attention weights: the RNN with
attention over its past states and the Transformer (causal, rows summing to 1, the weights the
forward pass uses). Exactness, the autoregressive property and cached == generic generation of
both models run in tests/test_sequence_models.py and the contract suite."""

from __future__ import annotations

import math

import pytest
import torch

from chainrule.errors import ChainruleError
from chainrule.models import CausalTransformer, CharRNN, RNNAttention
from tests.conftest import randomize


def test_tanh_rnn_is_the_notes_equations_by_hand() -> None:
    """h_t = tanh(W_hh h_{t-1} + W_xh x_t + b), o_t = softmax(W_hy h_t + c), with h_0 = 0 and the
    BOS token as the first input, computed with Python floats on a 2-unit RNN."""
    model = randomize(CharRNN(3, cell="tanh", embed=2, hidden=2).double(), std=0.7, seed=5)
    assert isinstance(model.rnn, torch.nn.RNN) and model.rnn.nonlinearity == "tanh"
    E = model.embedding.weight.tolist()
    W_xh, W_hh = model.rnn.weight_ih_l0.tolist(), model.rnn.weight_hh_l0.tolist()
    b = (model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0).tolist()
    W_hy, c = model.out.weight.tolist(), model.out.bias.tolist()
    x = [2, 0, 1, 1]
    h, total = [0.0, 0.0], 0.0
    for prev, token in zip([3, *x[:-1]], x):  # 3 is the BOS id
        e = E[prev]
        recurrent = [sum(W_hh[i][j] * h[j] for j in range(2)) for i in range(2)]
        from_input = [sum(W_xh[i][j] * e[j] for j in range(2)) for i in range(2)]
        h = [math.tanh(recurrent[i] + from_input[i] + b[i]) for i in range(2)]
        o = [sum(W_hy[k][j] * h[j] for j in range(2)) + c[k] for k in range(3)]
        total += o[token] - math.log(sum(math.exp(v) for v in o))
    assert model.log_prob(torch.tensor([x])).item() == pytest.approx(total, abs=1e-12)


def test_unknown_cells_and_windows_are_refused() -> None:
    with pytest.raises(ChainruleError, match="'tanh'"):
        CharRNN(3, cell="relu")
    with pytest.raises(ChainruleError, match="cell"):
        RNNAttention(3, cell="tanh")
    with pytest.raises(ChainruleError, match="window"):
        RNNAttention(3, window=0)


@pytest.mark.parametrize("window", [None, 3])
def test_rnn_attention_weights_are_causal_and_sum_to_one(window: int | None) -> None:
    model = randomize(RNNAttention(4, embed=5, hidden=8, attention=4, window=window).double(), std=0.5)
    x = torch.randint(0, 4, (2, 9), generator=torch.Generator().manual_seed(0))
    a = model.attention_weights(x)
    assert a.shape == (2, 9, 9)
    assert torch.allclose(a.sum(-1), torch.ones(2, 9, dtype=a.dtype))
    t, s = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    outside = (s > t) | ((s <= t - window) if window else torch.zeros_like(s, dtype=torch.bool))
    assert (a[:, outside] == 0).all() and (a[:, ~outside] > 0).all()


def test_rnn_attention_weights_are_the_ones_the_prediction_uses() -> None:
    """The context sum_s a_{t,s} h_s built from `attention_weights` gives the model's logits."""
    model = randomize(RNNAttention(3, cell="gru", embed=4, hidden=6, attention=3, window=None).double())
    x = torch.randint(0, 3, (2, 7), generator=torch.Generator().manual_seed(1))
    inputs = torch.cat([model.bos_column(2), x[:, :-1]], 1)
    h, _ = model.rnn(model.embedding(inputs))
    context = model.attention_weights(x) @ h
    logits = model.out(torch.tanh(model.combine(torch.cat([h, context], -1))))
    assert torch.allclose(logits, model(inputs), atol=1e-12)


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_transformer_attention_weights(positions: str) -> None:
    """(B, layers, heads, T, T), causal rows summing to 1; weights @ values reproduce each layer's
    attention output; reading them leaves log_prob unchanged."""
    model = randomize(
        CausalTransformer(3, d_model=8, layers=2, heads=2, block_size=8, positions=positions).double(),
        std=0.5,
    )
    x = torch.randint(0, 3, (2, 6), generator=torch.Generator().manual_seed(2))
    before = model.log_prob(x)
    w = model.attention_weights(x)
    assert w.shape == (2, 2, 2, 6, 6)
    assert torch.allclose(w.sum(-1), torch.ones(2, 2, 2, 6, dtype=w.dtype))
    assert (w.triu(1) == 0).all()
    assert torch.equal(model.log_prob(x), before)
    attn = model.blocks[0].attn
    h = model.blocks[0].norm1(model.embed(torch.cat([model.bos_column(2), x[:, :-1]], 1)))
    _, _, v = attn.queries_keys_values(h)
    mixed = (w[:, 0] @ v).transpose(1, 2).reshape(2, 6, 8)
    assert torch.allclose(attn.proj(mixed), attn(h)[0], atol=1e-12)
    with pytest.raises(ChainruleError, match="block size"):
        model.attention_weights(torch.zeros(1, 9, dtype=torch.long))


@pytest.mark.parametrize(
    "model_class, cell",
    [(CharRNN, "tanh"), (CharRNN, "gru"), (RNNAttention, "gru")],
)
def test_every_recurrent_cell_passes_the_contract(model_class, cell) -> None:
    """The contract suite builds each registered model from its tiny config (LSTM cells); the
    other cells are the same models with another recurrence, checked here the same way."""
    from chainrule.checks import check_model

    config = {**model_class.tiny_config(), "cell": cell}
    ran = check_model(randomize(model_class(**config), std=0.5, seed=1))
    assert {"check_normalisation", "check_fast_equals_generic", "check_mode_independence"} <= set(ran)
