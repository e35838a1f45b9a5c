"""Maximum likelihood for sequence models: batches of token chunks instead of (N, D) rows.

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
(nats per character for text), exactly like `chainrule.evaluate.evaluate_sequence`
(`train.limit_val_batches` scores the first chunks of every stream only).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset
from torchmetrics import SumMetric

from chainrule.data.text import SequenceDataset
from chainrule.errors import ChainruleError
from chainrule.models.sequence import SequenceModel
from chainrule.training import MaximumLikelihood, TrainConfig

#: Fraction of training windows that start from the beginning-of-sequence token.
BOS_FRACTION = 1 / 16
#: Parallel streams used to walk validation and test text.
EVAL_STREAMS = 16
#: Default training chunk of models without a block size (tokens scored per row).
DEFAULT_SEQ_LEN = 128


def eval_chunks(
    tokens: torch.Tensor, streams: int, chunk: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Consecutive pieces (rows, <= chunk) of `rows` contiguous parts of `tokens` of
    ceil(n / streams) tokens each, the last part padded at its end; yields (ids, valid, fresh)
    where `valid` marks real tokens (padding comes after them, so it never affects their
    scores) and `fresh` is True on the first piece. Every token is in exactly one piece."""
    n = tokens.numel()
    length = -(-n // streams)
    rows = -(-n // length)
    padded = torch.zeros(rows * length, dtype=tokens.dtype)
    padded[:n] = tokens
    valid = (torch.arange(rows * length) < n).view(rows, length)
    parts = padded.view(rows, length)
    for i in range(0, length, chunk):
        yield parts[:, i : i + chunk], valid[:, i : i + chunk], i == 0


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


class SequenceMaximumLikelihood(MaximumLikelihood):
    """Loss = mean NLL per token of a batch of chunks; validation = total NLL / tokens."""

    def __init__(self, model: SequenceModel, config: TrainConfig, unit: str = "char"):
        super().__init__(model, config)
        self.unit = unit
        self.val_sum, self.val_count = SumMetric(), SumMetric()
        self._train_state = None
        self._val_state = None

    def training_step(self, batch, batch_idx):
        x, fresh = batch
        model: SequenceModel = self.model
        state = model.begin(x[:, :1]) if fresh or self._train_state is None else self._train_state
        logp, state = model.chunk_log_prob(x[:, 1:], state)
        if model.carries_state:
            self._train_state = model.detach_state(state)
        loss = -logp.float().mean()
        if not torch.isfinite(loss):
            raise ChainruleError(
                f"training loss became {loss.item()} at step {self.global_step}; the last good"
                " checkpoint is in the run's checkpoints/ folder: lower the learning rate or set"
                " train.grad_clip and resume"
            )
        self.log("train_nll", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=x.shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        x, valid, fresh = batch
        model: SequenceModel = self.model
        state = model.begin(model.bos_column(x.shape[0])) if fresh else self._val_state
        logp, self._val_state = model.chunk_log_prob(x, state)
        self.val_sum.update(-logp.double()[valid].sum())
        self.val_count.update(valid.sum().double())

    def on_validation_epoch_end(self):
        nll = self.val_sum.compute() / self.val_count.compute()
        self.val_sum.reset()
        self.val_count.reset()
        self._val_state = None
        self.log("val_nll", nll.float(), prog_bar=True, batch_size=1)
        self.log(f"val_bits_per_{self.unit}", (nll / math.log(2)).float(), batch_size=1)


def sequence_training(
    model: SequenceModel, dataset: SequenceDataset, config: TrainConfig
) -> tuple[SequenceMaximumLikelihood, DataLoader, DataLoader]:
    """The Lightning module and the train/validation loaders for a sequence model."""
    if not isinstance(model, SequenceModel):
        raise ChainruleError(f"dataset {dataset.name!r} holds sequences; {model.registry_name!r} does not")
    if model.num_values != dataset.num_values:
        raise ChainruleError(
            f"the model has {model.num_values} symbols but dataset {dataset.name!r} has {dataset.num_values}"
        )
    seq_len = config.seq_len or getattr(model, "block_size", None) or DEFAULT_SEQ_LEN
    if getattr(model, "block_size", seq_len) < seq_len:
        raise ChainruleError(f"train.seq_len={seq_len} exceeds the model's block_size={model.block_size}")
    streams = model.carries_state
    train = TrainChunks(dataset.train, config.batch_size, seq_len, streams, model.bos, config.seed)
    val = EvalChunks(dataset.val, EVAL_STREAMS, model.eval_chunk)
    module = SequenceMaximumLikelihood(model, config, dataset.unit)
    return module, DataLoader(train, batch_size=None), DataLoader(val, batch_size=None)
