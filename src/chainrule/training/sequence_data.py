"""Training batches of sequence models: chunks of token streams instead of (N, D) rows.

Training batches are (B, T+1) token ids whose first column is context only, so each of the T
scored tokens has at least one token before it:

- models without carried state (Transformer, WaveNet) read *random windows*: each pass over the
  text starts at a random offset and visits its non-overlapping windows in random order; a
  fraction `BOS_FRACTION` of the windows start from the beginning-of-sequence token instead of a
  context token, which teaches the model to start a text from nothing;
- models that carry a state (char-RNN) read B *consecutive streams* of the text, chunk after
  chunk, and the trainer carries the hidden state from one chunk to the next without
  backpropagating through it (truncated BPTT); each pass restarts the streams at a random offset.

The position in the text survives `train.limit_train_batches` (short epochs continue where the
last one stopped). Validation walks the held-out text as `EVAL_STREAMS` parallel streams in
contiguous chunks with the state carried, so `val_nll` is total NLL / number of tokens
(nats per character for text), exactly like `chainrule.evaluation.evaluate_sequence`
(`train.limit_val_batches` scores the first chunks of every stream only).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset

from chainrule.data.text import SequenceDataset
from chainrule.errors import ChainruleError
from chainrule.evaluation.sequence import EVAL_STREAMS, eval_chunks
from chainrule.models.base import Model, models_sequences
from chainrule.training.config import TrainConfig

#: Fraction of training windows that start from the beginning-of-sequence token.
BOS_FRACTION = 1 / 16
#: Default training chunk of models without a block size (tokens scored per row).
DEFAULT_SEQ_LEN = 128


class TrainChunks(IterableDataset):
    """Endless training batches (B, T+1) with a `fresh` flag (True: start a new state)."""

    def __init__(
        self, tokens: torch.Tensor, batch: int, seq_len: int, streams: bool, bos: int, seed: int
    ) -> None:
        if tokens.numel() < batch * (seq_len + 1) + seq_len:
            raise ChainruleError(
                f"the training text has {tokens.numel():,} tokens, too few for batches of {batch} x"
                f" {seq_len}; lower train.batch_size or train.seq_len"
            )
        self.tokens, self.batch, self.seq_len, self.streams, self.bos = tokens, batch, seq_len, streams, bos
        self.generator = torch.Generator().manual_seed(seed)
        self._source = self._passes()

    def __len__(self) -> int:
        """Batches in one pass over the text."""
        return max(1, (self.tokens.numel() - self.seq_len) // (self.batch * self.seq_len))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, bool]]:
        for _ in range(len(self)):
            yield next(self._source)

    def _passes(self) -> Iterator[tuple[torch.Tensor, bool]]:
        while True:
            yield from self._stream_pass() if self.streams else self._window_pass()

    def _window_pass(self) -> Iterator[tuple[torch.Tensor, bool]]:
        T, g = self.seq_len, self.generator
        shift = int(torch.randint(0, T, (1,), generator=g))
        starts = torch.arange(shift, self.tokens.numel() - T, T)
        starts = starts[torch.randperm(len(starts), generator=g)]
        offsets = torch.arange(T + 1)
        for i in range(0, len(starts) - self.batch + 1, self.batch):
            x = self.tokens[starts[i : i + self.batch, None] + offsets]
            x[torch.rand(self.batch, generator=g) < BOS_FRACTION, 0] = self.bos
            yield x, True

    def _stream_pass(self) -> Iterator[tuple[torch.Tensor, bool]]:
        T, B = self.seq_len, self.batch
        shift = int(torch.randint(0, T, (1,), generator=self.generator))
        n = (self.tokens.numel() - shift - 1) // B
        parts = self.tokens[shift : shift + n * B + 1]
        rows = torch.arange(B)[:, None] * n
        for j in range(0, n - T + 1, T):
            x = parts[rows + j + torch.arange(T + 1)]
            if j == 0:
                x[:, 0] = self.bos  # each stream starts from nothing, with a fresh state
            yield x, j == 0


class EvalChunks(IterableDataset):
    """Validation pieces from `eval_chunks`."""

    def __init__(self, tokens: torch.Tensor, streams: int, chunk: int) -> None:
        if tokens.numel() == 0:
            raise ChainruleError("the validation text is empty")
        self.tokens, self.streams, self.chunk = tokens, streams, chunk

    def __len__(self) -> int:
        return math.ceil(math.ceil(self.tokens.numel() / self.streams) / self.chunk)

    def __iter__(self):
        return eval_chunks(self.tokens, self.streams, self.chunk)


def sequence_loaders(
    model: Model, dataset: SequenceDataset, config: TrainConfig
) -> tuple[DataLoader, DataLoader]:
    """The train/validation loaders of a sequence model (one that declares `event_shape == (None,)`)."""
    if not models_sequences(model):
        raise ChainruleError(f"dataset {dataset.name!r} holds sequences; {model.registry_name!r} does not")
    if model.num_values != dataset.num_values:
        raise ChainruleError(
            f"the model has {model.num_values} symbols but dataset {dataset.name!r} has {dataset.num_values}"
        )
    block_size = getattr(model, "block_size", None)  # models without one read any length
    seq_len = config.seq_len or block_size or DEFAULT_SEQ_LEN
    if block_size is not None and block_size < seq_len:
        raise ChainruleError(f"train.seq_len={seq_len} exceeds the model's block_size={block_size}")
    train = TrainChunks(
        dataset.train, config.batch_size, seq_len, model.carries_state, model.bos, config.seed
    )
    val = EvalChunks(dataset.val, EVAL_STREAMS, model.eval_chunk)
    return DataLoader(train, batch_size=None), DataLoader(val, batch_size=None)
