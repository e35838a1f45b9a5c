"""An RNN with attention over its own past hidden states (Bahdanau et al. 2015, Luong et al. 2015,
in the language-model form of Cheng et al. 2016): the notes' "attention mechanisms to adaptively
focus only on relevant context" on top of an LSTM or GRU.

After reading input t the recurrent layer holds h_t. The prediction at t scores the past states,

    e_{t,s} = (W_q h_t) . (W_k h_s) / sqrt(d)   for t - window < s <= t,
    a_{t,s} = softmax_s(e_{t,s}),   c_t = sum_s a_{t,s} h_s,
    o_t = softmax(W_y tanh(W_c [h_t; c_t] + b_c) + b_y),

so the next-token distribution depends only on inputs up to t (causal), and log p(x) is exact.
`window` bounds the states attended to (memory and time per token stay constant on long texts;
None attends to every past state). The state carried between chunks and through generation is
(recurrent state, last token, keys and states of the last window - 1 positions), so training uses
truncated BPTT, evaluation streams a whole text, and generation costs one RNN step and one
attention row per token.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from chainrule.dropout import Dropout
from chainrule.errors import ChainruleError
from chainrule.models.base import register_model
from chainrule.models.sequence import SequenceModel

RNN_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


@register_model("rnn-attention")
class RNNAttention(SequenceModel):
    """`cell` is "lstm" or "gru"; `attention` is the width d of queries and keys; `window` the
    number of past states (the current one included) each prediction attends to."""

    carries_state = True
    eval_chunk = 256

    @classmethod
    def tiny_config(cls) -> dict:
        return {"num_values": 3, "embed": 4, "hidden": 6, "attention": 4, "window": 3}

    def __init__(
        self,
        num_values: int | None = None,
        vocab: str | None = None,
        cell: str = "lstm",
        embed: int = 64,
        hidden: int = 256,
        attention: int = 64,
        window: int | None = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(num_values, vocab)
        self.remember_config(locals())
        if cell not in RNN_CELLS:
            raise ChainruleError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        if min(embed, hidden, attention) < 1 or not 0 <= dropout < 1:
            raise ChainruleError("embed, hidden and attention must be positive and 0 <= dropout < 1")
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ChainruleError(f"window must be a positive integer or None, got {window!r}")
        self.cell, self.window = cell, window
        self.embedding = nn.Embedding(self.num_values + 1, embed)  # + BOS
        self.rnn = RNN_CELLS[cell](embed, hidden, batch_first=True)
        self.query = nn.Linear(hidden, attention, bias=False)
        self.key = nn.Linear(hidden, attention, bias=False)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.drop = Dropout(dropout)
        self.out = nn.Linear(hidden, self.num_values)

    # -- the network -------------------------------------------------------------------------
    def _empty_memory(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.key.weight
        return p.new_zeros(batch, 0, self.key.out_features), p.new_zeros(batch, 0, self.rnn.hidden_size)

    def _run(self, inputs: torch.Tensor, hidden, keys: torch.Tensor, states: torch.Tensor):
        """Read `inputs` (B, T) after the recurrent state `hidden` and the remembered `keys`
        (B, M, d) and `states` (B, M, H) -> (logits (B, T, V), attention weights (B, T, M + T),
        hidden, keys, states), the memory trimmed to the last window - 1 positions."""
        y, hidden = self.rnn(self.embedding(inputs), hidden)  # (B, T, H)
        keys, states = torch.cat([keys, self.key(y)], 1), torch.cat([states, y], 1)
        M, T = keys.shape[1] - y.shape[1], y.shape[1]
        scores = self.query(y) @ keys.transpose(1, 2) / math.sqrt(keys.shape[-1])
        t = torch.arange(T, device=y.device)[:, None] + M  # position of each query in the memory
        s = torch.arange(M + T, device=y.device)[None]
        hidden_from_t = (s > t) | ((s <= t - self.window) if self.window is not None else False)
        weights = torch.softmax(scores.masked_fill(hidden_from_t, float("-inf")), -1)
        context = weights @ states
        o = torch.tanh(self.combine(torch.cat([y, context], -1)))
        logits = self.out(self.drop(o))
        if self.window is not None:
            first = max(keys.shape[1] - (self.window - 1), 0)
            keys, states = keys[:, first:], states[:, first:]
        return logits, weights, hidden, keys, states

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Input ids (B, L), read from a zero state -> next-token logits (B, L, V)."""
        return self._run(inputs, None, *self._empty_memory(inputs.shape[0]))[0]

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The weights (B, T, T) with which the prediction of each token of `x` (B, T) combines
        the past hidden states: entry [b, t, s] is a_{t,s}, the weight of h_s, the state after
        reading input s (the BOS for s = 0, x_{s-1} after it). Rows sum to 1; entries with
        s > t (the future) or s <= t - window are zero."""
        x = self.tokens(x)
        inputs = torch.cat([self.bos_column(x.shape[0]), x[:, :-1]], 1)
        return self._run(inputs, None, *self._empty_memory(x.shape[0]))[1]

    # -- SequenceModel -----------------------------------------------------------------------
    def begin(self, prefix: torch.Tensor):
        """State = (recurrent state or None, last token, keys, states); earlier prefix tokens
        are read in."""
        hidden, memory = None, self._empty_memory(prefix.shape[0])
        if prefix.shape[1] > 1:
            _, _, hidden, *memory = self._run(prefix[:, :-1], None, *memory)
        return (hidden, prefix[:, -1:], *memory)

    def chunk_log_prob(self, x: torch.Tensor, state):
        hidden, last, keys, states = state
        logits, _, hidden, keys, states = self._run(torch.cat([last, x[:, :-1]], 1), hidden, keys, states)
        return self.head.log_prob(logits, x), (hidden, x[:, -1:], keys, states)

    def detach_state(self, state):
        hidden, last, keys, states = state
        if isinstance(hidden, tuple):
            hidden = tuple(h.detach() for h in hidden)
        elif hidden is not None:
            hidden = hidden.detach()
        return (hidden, last, keys.detach(), states.detach())

    def select_state(self, state, rows: slice):
        hidden, last, keys, states = state
        if isinstance(hidden, tuple):  # recurrent states hold the batch on dimension 1
            hidden = tuple(h[:, rows] for h in hidden)
        elif hidden is not None:
            hidden = hidden[:, rows]
        return (hidden, last[rows], keys[rows], states[rows])

    def prefill(self, seq: torch.Tensor):
        logits, _, *cache = self._run(seq, None, *self._empty_memory(seq.shape[0]))
        return logits[:, -1], tuple(cache)

    def step(self, seq: torch.Tensor, cache):
        logits, _, *cache = self._run(seq[:, -1:], *cache)
        return logits[:, -1], tuple(cache)
