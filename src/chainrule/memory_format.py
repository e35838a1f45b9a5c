"""Channels-last activations for the convolutional image models.

oneDNN's convolutions on the CPU run natively on channels-last (N, H, W, C) maps; given the
default (N, C, H, W) layout they reorder input and output on every call. For the Gated PixelCNN's
thin 1 × 1 and 1 × 2 convolutions in bf16 that reorder cost 3-4x their arithmetic (96 → 96
channels, batch 64 on 28 × 28: 90 against 413 GFLOP/s; 2026-12-07, torch 2.13, AMD EPYC).
A convolution's output follows its input's layout, except that a one-channel input (a grey image)
is both layouts at once and gives an (N, C, H, W) output, so the models ask for the layout at each
layer's input: a no-op once the maps are channels-last. The Row LSTM's layers take their input
channels-last too (its thin 32 → 128 1 × 3 input-to-state convolution, and the 1 × 1 after the
scan: training steps 1.06-1.12x, in-process A/B, batch 64, 2 threads, 2026-12-07); the Diagonal
BiLSTM's, whose work is matmuls over gathered pixels, gained nothing (0.95-1.05x). Parameters keep
their default layout (they are tiny, and safetensors files and optimiser states stay as they were).
"""

from __future__ import annotations

import torch


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """`x` (N, C, H, W) in channels-last memory (the same tensor if it already is)."""
    return x.contiguous(memory_format=torch.channels_last)
