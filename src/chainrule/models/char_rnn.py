"""char-RNN (Karpathy 2015): token embedding -> tanh RNN, LSTM or GRU layers -> linear -> Categorical head.

The plain (Elman) RNN of the notes, `cell="tanh"`, reads the embedded input x_t and computes

    h_t = tanh(W_hh h_{t-1} + W_xh x_t + b),    o_t = softmax(W_hy h_t + c),    h_0 = 0,

where o_t is the distribution of the next token (torch's `nn.RNN` holds b as two bias vectors,
b = b_ih + b_hh; W_hy and c are `out`). LSTM and GRU replace the tanh update by gated ones whose
additive memory lets gradients reach far back (see examples/rnn_attention.py for the picture).

The state carried between chunks is (hidden state, last token), so training uses truncated
backpropagation through time over consecutive chunks, evaluation streams a whole text, and
generation costs one RNN step per token.
"""

from __future__ import annotations

import torch
from torch import nn

from chainrule.dropout import Dropout
from chainrule.errors import ChainruleError
from chainrule.models.base import register_model
from chainrule.models.sequence import SequenceModel

#: the recurrent layers a char-RNN can use (the tanh RNN: h_t = tanh(W_hh h_{t-1} + W_xh x_t + b))
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "tanh": nn.RNN}


@register_model("char-rnn")
class CharRNN(SequenceModel):
    """`cell` is "lstm", "gru" or "tanh" (the plain RNN of the notes); `dropout` applies between
    layers and before the output layer."""

    carries_state = True
    eval_chunk = 512

    @classmethod
    def tiny_config(cls) -> dict:
        return {"num_values": 3, "embed": 4, "hidden": 6}

    def __init__(
        self,
        num_values: int | None = None,
        vocab: str | None = None,
        cell: str = "lstm",
        embed: int = 64,
        hidden: int = 256,
        layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(num_values, vocab)
        self.remember_config(locals())
        if cell not in CELLS:
            raise ChainruleError(f"cell must be 'lstm', 'gru' or 'tanh', got {cell!r}")
        if min(embed, hidden, layers) < 1 or not 0 <= dropout < 1:
            raise ChainruleError("embed, hidden and layers must be positive and 0 <= dropout < 1")
        self.cell = cell
        self.embedding = nn.Embedding(self.num_values + 1, embed)  # + BOS
        between = dropout if layers > 1 else 0.0
        self.rnn = CELLS[cell](embed, hidden, layers, batch_first=True, dropout=between)
        self.drop = Dropout(dropout)
        self.out = nn.Linear(hidden, self.num_values)

    def _run(self, inputs: torch.Tensor, hidden):
        y, hidden = self.rnn(self.embedding(inputs), hidden)
        return self.out(self.drop(y)), hidden

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Input ids (B, L), read from a zero state -> next-token logits (B, L, V)."""
        return self._run(inputs, None)[0]

    def begin(self, prefix: torch.Tensor):
        """State = (hidden state or None, last token); earlier prefix tokens are read in."""
        hidden = None
        if prefix.shape[1] > 1:
            _, hidden = self._run(prefix[:, :-1], None)
        return (hidden, prefix[:, -1:])

    def chunk_log_prob(self, x: torch.Tensor, state):
        hidden, last = state
        logits, hidden = self._run(torch.cat([last, x[:, :-1]], 1), hidden)
        return self.head.log_prob(logits, x), (hidden, x[:, -1:])

    def detach_state(self, state):
        hidden, last = state
        if hidden is None:
            return state
        hidden = tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()
        return (hidden, last)

    def select_state(self, state, rows: slice):
        hidden, last = state
        if hidden is not None:
            hidden = tuple(h[:, rows] for h in hidden) if isinstance(hidden, tuple) else hidden[:, rows]
        return (hidden, last[rows])

    def prefill(self, seq: torch.Tensor):
        logits, hidden = self._run(seq, None)
        return logits[:, -1], hidden

    def step(self, seq: torch.Tensor, cache):
        logits, hidden = self._run(seq[:, -1:], cache)
        return logits[:, -1], hidden
