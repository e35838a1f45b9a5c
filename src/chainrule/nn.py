"""Masked layers: masks are buffers applied functionally, weights are never edited in place."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MaskedLinear(nn.Linear):
    """`y = x (W * M)^T + b` with a fixed 0/1 mask `M` of the weight's shape."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        # derived from the model config, so not saved: files hold only what training learned
        self.register_buffer("mask", torch.ones(out_features, in_features), persistent=False)

    def set_mask(self, mask: torch.Tensor) -> None:
        """Replace the mask buffer by a new tensor (never edited in place, so graphs built with
        the old mask stay valid; the weight itself is never touched)."""
        self.mask = mask.to(device=self.weight.device, dtype=self.weight.dtype)

    def masked_weight(self) -> torch.Tensor:
        """The weight times the mask: the matrix the layer actually applies."""
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight(), self.bias)


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
    """Rotate pairs (x_i, x_{i+d/2}) of the last axis by position-dependent angles."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h].float(), x[..., h:].float()
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).to(x.dtype)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position i attends to positions <= i, through
    `F.scaled_dot_product_attention` (is_causal). With `cache=(K, V)` the new positions are
    appended to cached keys/values (a KV cache: generation costs O(1) passes per token)."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, rotary: bool = False) -> None:
        super().__init__()
        if d_model % heads or (rotary and (d_model // heads) % 2):
            raise ValueError(f"d_model={d_model} must split into {heads} heads (of even size with rotary)")
        self.heads, self.dropout, self.rotary = heads, dropout, rotary
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(
        self, x: torch.Tensor, start: int = 0, cache: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, L, d) at positions start..start+L-1 -> (output (B, L, d), (K, V) including x's)."""
        B, L, d = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.rotary:
            cos, sin = rotary_tables(start, L, d // self.heads, x.device)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        if L > 1 and k.shape[2] != L:
            raise ValueError("several new positions on top of a cache are not supported")
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=L > 1, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(B, L, d)), (k, v)


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
