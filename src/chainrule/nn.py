"""Masked layers: masks are buffers applied functionally, weights are never edited in place."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from chainrule.dropout import dropout
from chainrule.masked_linear import MaskedLinear as MaskedLinear  # re-exported for the models


def strictly_lower_mask(n: int) -> torch.Tensor:
    """Mask with M[i, j] = 1 iff j < i: output i sees only earlier inputs."""
    return torch.ones(n, n).tril(-1)


def init_uniform_(t: torch.Tensor, fan_in: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Glorot-like uniform init scaled by fan-in, used where nn.Linear's default is not reachable."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    with torch.no_grad():
        return t.uniform_(-bound, bound, generator=generator)


def exclusive_cumsum(t: torch.Tensor) -> torch.Tensor:
    """Prefix sums along dim 1 that exclude the current entry: out[:, i] = sum_{j<i} t[:, j].

    Computed from a shifted copy rather than as cumsum(t) - t, so out[:, i] is exactly
    independent of t[:, i] (no rounding leak, which the dependency tests would catch)."""
    shifted = torch.cat([torch.zeros_like(t[:, :1]), t[:, :-1]], dim=1)
    return torch.cumsum(shifted, dim=1)


def rotary_tables(start: int, length: int, dim: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (length, dim/2) of rotary position embeddings (Su et al. 2021) for positions
    start..start+length-1, with the usual base 10000."""
    inv = 10000.0 ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    ang = torch.arange(start, start + length, device=device, dtype=torch.float32)[:, None] * inv[None]
    return ang.cos(), ang.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i+d/2}) of the last axis by position-dependent angles; `cos` and
    `sin` are the tables of `rotary_tables` repeated twice along the last axis (full width), so
    this is x * cos + (-x2, x1) * sin, computed in float32 for float32 inputs (the tables are
    float32), in float64 for float64 inputs, and in x's own precision for bf16/fp16 (training
    under autocast, where the result is rounded to it anyway: half the memory traffic)."""
    h = x.shape[-1] // 2
    if x.element_size() < cos.element_size():
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return (x * cos + torch.cat([-x[..., h:], x[..., :h]], -1) * sin).to(x.dtype)


def masked_future(scores: torch.Tensor) -> torch.Tensor:
    """Attention scores (..., L, L) with every key after its query (j > i) set to -inf."""
    L = scores.shape[-1]
    future = torch.ones(L, L, dtype=torch.bool, device=scores.device).triu(1)
    return scores.masked_fill(future, float("-inf"))


def causal_softmax(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Attention weights softmax(q_i . k_j / sqrt(d)) over keys j <= i, zero above the diagonal,
    (B, heads, L, L); computed in float32 when q and k are in lower precision."""
    scores = q @ k.transpose(-1, -2)
    if scores.element_size() < 4:
        scores = scores.float()
    return torch.softmax(masked_future(scores / math.sqrt(q.shape[-1])), -1)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + causal mask) v over (B, heads, L, d): PyTorch's fused kernel,
    except when training under autocast on the CPU (eager or compiled), where it is written out
    in the autocast precision: PyTorch's flash-attention backward and its math backend are slow
    there, and a float32 softmax spends most of the step converting (B, heads, L, L) scores.
    The scale is folded into q (exact for power-of-two head sizes), and torch's CPU softmax
    accumulates in float32 and rounds the weights once, as the matmul with v would anyway.
    One step of the 45-minute Shakespeare recipe (2 threads): 0.33 s with a float32 softmax,
    0.25 s so (torch 2.13, 2026-12-06). Both compute the same attention up to rounding."""
    if not (q.device.type == "cpu" and torch.is_grad_enabled() and torch.is_autocast_enabled("cpu")):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-1, -2)
    weights = torch.softmax(masked_future(scores), -1)
    if dropout_p:
        weights = dropout(weights, dropout_p)
    return weights @ v


class KVCache:
    """Keys and values (B, heads, positions, head size) of one attention layer, in buffers
    allocated once for `capacity` positions, so appending a position copies only that position."""

    def __init__(self, k: torch.Tensor, v: torch.Tensor, capacity: int) -> None:
        B, H, L, D = k.shape
        self.k = k.new_empty(B, H, max(capacity, L), D)
        self.v = v.new_empty(B, H, max(capacity, L), D)
        self.length = 0
        self.append(k, v)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new positions; return all cached keys and values (views, no copy)."""
        end = self.length + k.shape[2]
        if end > self.k.shape[2]:
            raise ValueError(f"KV cache full: {end} positions > capacity {self.k.shape[2]}")
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position i attends to positions <= i, through
    `F.scaled_dot_product_attention` (is_causal). `forward` with `cache_capacity` also returns a
    `KVCache` of its keys and values; `step` adds one position on top of such a cache (a KV cache:
    generation costs O(1) passes per token)."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, rotary: bool = False) -> None:
        super().__init__()
        if d_model % heads or (rotary and (d_model // heads) % 2):
            raise ValueError(f"d_model={d_model} must split into {heads} heads (of even size with rotary)")
        self.heads, self.dropout, self.rotary = heads, dropout, rotary
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self._rotary: tuple[torch.Tensor, torch.Tensor] | None = None  # cos/sin of positions 0..n-1

    def rotary_for(self, start: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows start..start+length-1 of full-width cos/sin tables computed once (the values of
        `rotary_tables(start, length, ...)` repeated twice: each entry depends on its position only)."""
        end = start + length
        if self._rotary is None or self._rotary[0].shape[0] < end or self._rotary[0].device != device:
            # normal tensors even when first called under inference_mode (Lightning's validation),
            # so that training can save them for backward afterwards
            with torch.inference_mode(False):
                cos, sin = rotary_tables(0, max(end, 256), self.qkv.in_features // self.heads, device)
                self._rotary = (torch.cat([cos, cos], -1), torch.cat([sin, sin], -1))
        cos, sin = self._rotary
        return cos[start:end], sin[start:end]

    def queries_keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, L, d) at positions 0..L-1 -> q, k, v, each (B, heads, L, head size); q and k are
        rotated when the positions are rotary."""
        B, L, d = x.shape
        qkv = self.qkv(x).view(B, L, 3, self.heads, d // self.heads)
        if self.rotary:  # q and k rotated in one call
            cos, sin = self.rotary_for(0, L, x.device)
            q, k = apply_rotary(qkv[:, :, :2], cos[:, None, None], sin[:, None, None]).permute(2, 0, 3, 1, 4)
            return q, k, qkv[:, :, 2].transpose(1, 2)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        return q, k, v

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The weights (B, heads, L, L) that `forward(x)` gives the values: row i is
        softmax(q_i . k_j / sqrt(head size)) over j <= i, zero above the diagonal (rows sum to 1)."""
        q, k, _ = self.queries_keys_values(x)
        return causal_softmax(q, k)

    def forward(self, x: torch.Tensor, cache_capacity: int = 0) -> tuple[torch.Tensor, KVCache | None]:
        """x (B, L, d) at positions 0..L-1 -> (output (B, L, d), a `KVCache` for `cache_capacity`
        positions holding x's keys and values, or None when `cache_capacity` is 0)."""
        B, L, d = x.shape
        q, k, v = self.queries_keys_values(x)
        cache = KVCache(k, v, cache_capacity) if cache_capacity else None
        y = causal_attention(q, k, v, self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, L, d)), cache

    def step(self, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """x (B, 1, d) at the position after the cached ones, which it attends to (and itself)
        and joins -> output (B, 1, d). Inference only (no dropout)."""
        B, _, d = x.shape
        pos = cache.length
        qkv = self.qkv(x).view(B, 3, self.heads, d // self.heads)
        qk = qkv[:, :2]
        if self.rotary:
            cos, sin = self.rotary_for(pos, 1, x.device)
            qk = apply_rotary(qk, cos, sin)
        k, v = cache.append(qk[:, 1, :, None], qkv[:, 2, :, None])  # (B, heads, pos + 1, head size)
        y = F.scaled_dot_product_attention(qk[:, 0, :, None], k, v)  # one query: no mask needed
        return self.proj(y.reshape(B, 1, d))  # (B, heads, 1, head size) -> (B, 1, d)


class CausalConv1d(nn.Conv1d):
    """Kernel-2 dilated convolution over (B, C, L) whose output at t sees inputs t - dilation and t
    only (left zero padding), as in WaveNet."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=2, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.dilation[0], 0)))

    def step(self, past: torch.Tensor, now: torch.Tensor) -> torch.Tensor:
        """One output position (B, C_out) from the inputs (B, C_in) at t - dilation and at t."""
        w = self.weight
        return F.linear(past, w[:, :, 0]) + F.linear(now, w[:, :, 1], self.bias)
