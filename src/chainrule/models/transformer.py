"""Causal Transformer language model (GPT-style): pre-norm blocks of masked multi-head
self-attention and an MLP, learned or rotary positions, output layer tied to the embedding.

The context is `block_size` inputs. Longer sequences are read in windows that move by half a
block: to predict the token after n inputs the model sees inputs `window_start(n)`..n-1, which
is the whole sequence while n <= 2 * (block_size // 2) and otherwise between block_size/2 + 1
and block_size of the latest inputs. Generation with the KV cache follows the same windows (when a
window moves, the cache is rebuilt from its first half in one batched pass, an amortised O(1)
cost per token), so cached and uncached generation see identical contexts and draw identical
tokens; streaming evaluation scores half a block per pass with at least half a block of context.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.dropout import Dropout
from chainrule.errors import ChainruleError
from chainrule.models.base import register_model
from chainrule.models.sequence import SequenceModel
from chainrule.nn import CausalSelfAttention, KVCache


class Block(nn.Module):
    """x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, d_model: int, heads: int, dropout: float, rotary: bool, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, heads, dropout, rotary)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model),
            nn.GELU(),
            nn.Linear(mlp_ratio * d_model, d_model),
            Dropout(dropout),
        )
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, cache_capacity: int = 0) -> tuple[torch.Tensor, KVCache | None]:
        """x (B, L, d) -> (B, L, d), and the attention's KV cache when `cache_capacity` > 0."""
        a, cache = self.attn(self.norm1(x), cache_capacity)
        x = x + (self.drop(a) if self.training else a)
        return x + self.mlp(self.norm2(x)), cache

    def step(self, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """The output (B, 1, d) at the position after the cached ones, which joins `cache`
        (inference only: no dropout)."""
        x = x + self.attn.step(self.norm1(x), cache)
        return x + self.mlp(self.norm2(x))


@register_model("transformer")
class CausalTransformer(SequenceModel):
    """`positions` is "learned" or "rotary"; `tie_weights` shares the token embedding with the
    output layer."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {"num_values": 3, "d_model": 8, "layers": 1, "heads": 2, "block_size": 4, "mlp_ratio": 2}

    def __init__(
        self,
        num_values: int | None = None,
        vocab: str | None = None,
        d_model: int = 256,
        layers: int = 4,
        heads: int = 4,
        block_size: int = 256,
        positions: str = "rotary",
        dropout: float = 0.0,
        tie_weights: bool = True,
        mlp_ratio: int = 4,
    ) -> None:
        super().__init__(num_values, vocab)
        self.remember_config(locals())
        if positions not in ("learned", "rotary"):
            raise ChainruleError(f"positions must be 'learned' or 'rotary', got {positions!r}")
        if min(d_model, layers, heads, mlp_ratio) < 1 or block_size < 2 or not 0 <= dropout < 1:
            raise ChainruleError("d_model, layers, heads, mlp_ratio >= 1, block_size >= 2, 0 <= dropout < 1")
        if d_model % heads or (positions == "rotary" and (d_model // heads) % 2):
            raise ChainruleError(f"d_model={d_model} must split into {heads} heads (of even size for rotary)")
        self.block_size = int(block_size)
        self.eval_chunk = max(self.block_size // 2, 1)
        self.tie_weights = tie_weights
        self.embedding = nn.Embedding(self.num_values + 1, d_model)  # + BOS
        self.pos = nn.Embedding(self.block_size, d_model) if positions == "learned" else None
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, heads, dropout, positions == "rotary", mlp_ratio) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.out = None if tie_weights else nn.Linear(d_model, self.num_values, bias=False)
        self._init_weights(layers)

    def _init_weights(self, layers: int) -> None:
        """GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 layers)."""
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    # -- the network -------------------------------------------------------------------------
    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        h = self.norm(h)
        if self.out is None:
            return F.linear(h, self.embedding.weight[: self.num_values])
        return self.out(h)

    def embed(self, inputs: torch.Tensor, start: int = 0) -> torch.Tensor:
        h = self.embedding(inputs)
        if self.pos is not None:
            h = h + self.pos(torch.arange(start, start + inputs.shape[1], device=inputs.device))
        return self.drop(h) if self.training else h

    def trunk(self, h: torch.Tensor) -> torch.Tensor:
        """Embedded inputs (B, L, d) at positions 0..L-1 -> logits (B, L, V)."""
        for block in self.blocks:
            h, _ = block(h)
        return self._logits(h)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Input ids (B, L <= block_size) -> next-token logits (B, L, V)."""
        return self.trunk(self.embed(inputs))

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The causal attention weights (B, layers, heads, T, T) of the pass that predicts the
        tokens of `x` (B, T <= block_size): entry [b, l, h, t, s] is how much head h of layer l,
        at the position predicting x_t, attends to input s (the BOS for s = 0, x_{s-1} after it).
        Rows sum to 1 and are zero above the diagonal. Reading them changes nothing in `log_prob`."""
        x = self.tokens(x)
        if x.shape[1] > self.block_size:
            raise ChainruleError(f"{x.shape[1]} tokens exceed the block size {self.block_size}")
        h = self.embed(torch.cat([self.bos_column(x.shape[0]), x[:, :-1]], 1))
        weights = []
        for block in self.blocks:
            weights.append(block.attn.attention_weights(block.norm1(h)))
            h, _ = block(h)
        return torch.stack(weights, 1)

    # -- SequenceModel -----------------------------------------------------------------------
    def window_start(self, n: int) -> int:
        """First input seen when predicting from n inputs: the token to predict lies in chunk
        k = (n-1) // half of the sequence, and the window starts one chunk before it, so it
        holds between half + 1 and 2 * half <= block_size inputs."""
        half = self.eval_chunk
        return max(0, ((n - 1) // half - 1) * half)

    def begin(self, prefix: torch.Tensor) -> torch.Tensor:
        return prefix[:, -self.block_size :]

    def chunk_log_prob(self, x: torch.Tensor, state: torch.Tensor):
        T = x.shape[1]
        if self.block_size < T:
            raise ChainruleError(f"chunks of {T} tokens exceed the block size {self.block_size}")
        seq = torch.cat([state, x], 1)
        # a chunk of up to half a block, aligned on the half-block grid, sees the same window
        # as generation (`window_start`); a longer (training) chunk sees up to block_size inputs
        width = min(self.block_size, self.eval_chunk + T)
        logits = self(seq[:, :-1][:, -width:])[:, -T:]
        return self.head.log_prob(logits, x), seq[:, -self.block_size :]

    def prefill(self, seq: torch.Tensor):
        start = self.window_start(seq.shape[1])
        h, cache = self.embed(seq[:, start:]), []
        for block in self.blocks:
            h, kv = block(h, cache_capacity=self.block_size)
            cache.append(kv)
        return self._logits(h[:, -1]), (start, cache)

    def step(self, seq: torch.Tensor, cache):
        start, kvs = cache
        if self.window_start(seq.shape[1]) != start:
            return self.prefill(seq)  # the window moved: rebuild the cache from its new start
        pos = seq.shape[1] - 1 - start
        h = self.embed(seq[:, -1:], pos)
        for block, kv in zip(self.blocks, kvs):
            h = block.step(h, kv)  # appends this position to kv in place
        return self._logits(h[:, -1]), (start, kvs)
