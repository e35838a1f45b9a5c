"""Sequence models (language models over tokens) = causal conditioner + Categorical head.

A sequence x_0..x_{T-1} of token ids in [0, V) has log p(x) = sum_t log p(x_t | x_<t), in nats.
The conditioner reads the inputs shifted right by one, starting from a beginning-of-sequence
token (id V, an extra embedding row that is never predicted), so p(x_0) is learned too and the
probabilities of all V^T sequences of each length T sum to 1.

Subclasses implement four things:

- `chunk_log_prob(x, state) -> (logp (B, T), state)`: log-probabilities of the tokens of a chunk
  given everything before it, summarised in `state` (an RNN's hidden state, or the previous
  tokens for models with a finite context). This one method serves training (truncated BPTT
  carries the state between chunks), streaming evaluation and `log_prob`.
- `begin(prefix)`: the state after reading `prefix` (B, k) token ids (k >= 1; the BOS token may
  be among them), with no hidden state computed yet for RNNs.
- `prefill(seq) -> (logits of the next token (B, V), cache)` and `step(seq, cache)`: the fast
  generator, which extends `cache` by the last token of `seq` at O(1) passes per token (KV cache,
  RNN state, convolution queues). The uncached reference calls `prefill` on the whole sequence
  for every new token; both paths must give the same logits, so for the same generator they
  draw the same tokens.

Sampling draws exactly one uniform per token (after temperature, top-k and top-p filtering),
so the cached and uncached generators consume the same random stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from chainrule.devices import draw
from chainrule.distributions import Categorical
from chainrule.errors import ChainruleError
from chainrule.models.base import Model
from chainrule.tokenizer import CharTokenizer
from chainrule.validation import (
    check_completion,
    check_discrete,
    check_generation_options,
    check_generator,
    check_num_samples,
)

State = Any
#: A generator's per-token choice rule: (next-token logits (B, V), index of the new token) -> ids (B,)
Choose = Callable[[torch.Tensor, int], torch.Tensor]


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Logits / temperature, with everything outside the `top_k` most likely tokens and outside the
    smallest set whose probability reaches `top_p` set to -inf (the most likely token always stays)."""
    logits = logits.float() / temperature
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        probs, idx = torch.softmax(logits, -1).sort(-1, descending=True)
        drop_sorted = probs.cumsum(-1) - probs >= top_p  # mass before this token already reaches p
        drop = torch.zeros_like(drop_sorted).scatter(-1, idx, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """One token per row of `logits` (B, V) from one uniform each; temperature 0 is greedy."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p), -1)
    cdf = probs.cumsum(-1)
    cdf = cdf / cdf[..., -1:]
    u = draw(torch.rand, logits.shape[:-1], generator=generator, device=cdf.device, dtype=cdf.dtype)
    # count of cdf <= u: never lands on a token of zero probability, and is < V since cdf[-1] = 1 > u
    return (cdf <= u.unsqueeze(-1)).sum(-1)


class SequenceModel(Model):
    """Base of the char-RNN, causal Transformer and WaveNet: log_prob, streaming, generation."""

    value_type = "categorical"
    event_shape: tuple[int | None, ...] = (None,)  # variable length: x is (batch, T) for any T >= 1
    #: `cond` is a prefix of token ids: log_prob(x, cond) = log p(x | prefix), sample(n, cond)
    #: draws continuations of it
    conditioned_on = "prefix"
    #: tokens scored per chunk by streaming evaluation (subclasses adjust)
    eval_chunk: int = 256
    #: whether training should carry the state between consecutive chunks (truncated BPTT)
    carries_state: bool = False

    def __init__(self, num_values: int | None = None, vocab: str | None = None) -> None:
        super().__init__()
        if vocab is not None:
            self.tokenizer: CharTokenizer | None = CharTokenizer(vocab)
            if num_values is not None and num_values != len(self.tokenizer):
                raise ChainruleError(f"num_values={num_values} but the vocabulary has {len(vocab)} symbols")
            num_values = len(self.tokenizer)
        else:
            self.tokenizer = None
        if num_values is None or num_values < 2:
            raise ChainruleError(f"a sequence model needs num_values >= 2 (or a vocab), got {num_values}")
        self.num_values = int(num_values)
        self.bos = self.num_values  # input-only id of the beginning-of-sequence token
        self.head = Categorical(self.num_values)

    # -- what subclasses provide -------------------------------------------------------------
    def begin(self, prefix: torch.Tensor) -> State:
        raise NotImplementedError

    def chunk_log_prob(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def prefill(self, seq: torch.Tensor) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def step(self, seq: torch.Tensor, cache: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def detach_state(self, state: State) -> State:
        """Cut the graph between chunks (truncated backpropagation through time)."""
        if isinstance(state, torch.Tensor):
            return state.detach()
        if isinstance(state, tuple | list):
            return type(state)(self.detach_state(s) for s in state)
        return state

    def select_state(self, state: State, rows: slice) -> State:
        """The state of some batch rows (tensors with the batch on dimension 0)."""
        if isinstance(state, torch.Tensor):
            return state[rows]
        return type(state)(self.select_state(s, rows) for s in state)

    # -- helpers -----------------------------------------------------------------------------
    def bos_column(self, batch: int) -> torch.Tensor:
        return torch.full((batch, 1), self.bos, dtype=torch.long, device=self._device())

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def tokens(self, x: torch.Tensor, what: str = "x") -> torch.Tensor:
        """Check (B, T) ids in [0, V) (integer or integer-valued float tensors); return int64."""
        if not isinstance(x, torch.Tensor):
            raise ChainruleError(f"{what} must be a torch.Tensor of token ids, got {type(x).__name__}")
        if x.is_complex():
            raise ChainruleError(f"{what} is a complex tensor; token ids are integers")
        if x.dim() == 1:
            x = x[None]
        if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ChainruleError(f"{what} must be token ids of shape (batch, length), got {tuple(x.shape)}")
        check_discrete(x.float() if not x.is_floating_point() else x, self.num_values, what)
        return x.long().to(self._device())

    # -- the contract ------------------------------------------------------------------------
    def prefix_state(self, cond: torch.Tensor | None, batch: int) -> State:
        """The state after BOS and the prefix `cond` ((k,) or (batch, k) token ids; None or
        empty: nothing), from which `chunk_log_prob` continues."""
        start = self.bos_column(batch)
        if cond is not None and cond.numel() > 0:
            prefix = self.tokens(cond, "cond (prefix)")
            if prefix.shape[0] not in (1, batch):
                raise ChainruleError(f"cond holds {prefix.shape[0]} prefixes for {batch} sequences")
            start = torch.cat([start, prefix.expand(batch, -1)], 1)
        return self.begin(start)

    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) of each sequence (B, T) from its start, or after the prefix `cond`, in nats
        (sum over positions)."""
        x = self.tokens(x)
        return self.stream_log_prob(x, self.prefix_state(cond, x.shape[0]))[0].sum(-1)

    def stream_log_prob(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Log-probabilities (B, T) of a long sequence read in chunks of `eval_chunk` tokens,
        each given the state the previous chunks left (every token is scored once)."""
        parts = []
        for i in range(0, x.shape[1], self.eval_chunk):
            lp, state = self.chunk_log_prob(x[:, i : i + self.eval_chunk], state)
            parts.append(lp)
        return torch.cat(parts, 1), state

    def encode(self, text: str, what: str = "prompt") -> torch.Tensor:
        if self.tokenizer is None:
            raise ChainruleError("this model has no character vocabulary (it was trained on audio)")
        return self.tokenizer.encode(text, what)

    def decode(self, ids: torch.Tensor) -> str:
        if self.tokenizer is None:
            raise ChainruleError("this model has no character vocabulary (it was trained on audio)")
        return self.tokenizer.decode(ids)

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor | None,
        n_new: int,
        *,
        batch: int = 1,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        cache: bool = True,
        choose: Choose | None = None,
    ) -> torch.Tensor:
        """Prompt ids (P,) or (B, P) (None or empty: start from nothing) followed by `n_new`
        sampled ids. `cache=False` is the reference: a full pass over the sequence per token.
        `choose(logits, i)` replaces the draw of new token i (0-based) when given: the caller's
        choice rule (an arithmetic decoder reading the tokens from a code, for example)."""
        pieces = self.generate_stream(
            prompt,
            n_new,
            batch=batch,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            generator=generator,
            cache=cache,
            choose=choose,
        )
        return torch.cat(list(pieces), 1)

    def generate_stream(
        self,
        prompt: torch.Tensor | None,
        n_new: int,
        *,
        batch: int = 1,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        cache: bool = True,
        chunk: int = 1000,
        choose: Choose | None = None,
    ) -> Iterator[torch.Tensor]:
        """`generate` in pieces: the prompt ids (B, P) first, then the new ids in (B, <= chunk)
        pieces as they are drawn (the same tokens as `generate` for the same generator), so a
        caller can write them out while generation goes on. The ids are kept in one buffer
        allocated up front (8 bytes per token and row: `n_new` is limited by the caller). `choose`: see
        `generate`."""
        if isinstance(n_new, bool) or not isinstance(n_new, int) or n_new < 0:
            raise ChainruleError(f"the number of new tokens must be an integer >= 0, got {n_new!r}")
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ChainruleError(f"chunk must be an integer >= 1, got {chunk!r}")
        check_generation_options(temperature, top_k, top_p, batch)
        check_generator(generator)
        if temperature > 0 and temperature < 1e-6:
            temperature = 0.0  # logits / 1e-40 overflow to inf (NaN probabilities): the limit is greedy
        if prompt is not None and not isinstance(prompt, torch.Tensor):
            raise ChainruleError(
                f"prompt must be a tensor of token ids (use encode), got {type(prompt).__name__}"
            )
        if prompt is None or prompt.numel() == 0:
            prompt = torch.zeros(batch, 0, dtype=torch.long, device=self._device())
        else:
            prompt = self.tokens(prompt, "prompt")
        if prompt.shape[0] == 1 and batch > 1:
            prompt = prompt.expand(batch, -1)
        yield prompt
        if n_new == 0:
            return
        was_training = self.training
        self.eval()
        try:
            start = prompt.shape[1] + 1
            buf = torch.empty(prompt.shape[0], start + n_new, dtype=torch.long, device=prompt.device)
            buf[:, :start] = torch.cat([self.bos_column(prompt.shape[0]), prompt], 1)
            logits, state = self.prefill(buf[:, :start])
            done = start
            for t in range(start, start + n_new):
                if choose is None:
                    buf[:, t] = sample_next(logits, generator, temperature, top_k, top_p)
                else:
                    buf[:, t] = choose(logits, t - start)
                if t + 1 - done >= chunk:
                    yield buf[:, done : t + 1].clone()
                    done = t + 1
                if t + 1 < start + n_new:
                    seq = buf[:, : t + 1]
                    logits, state = self.step(seq, state) if cache else self.prefill(seq)
            if done < start + n_new:
                yield buf[:, done:].clone()
        finally:
            self.train(was_training)

    def sample(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        *,
        given: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        length: int = 64,
        method: str = "fast",
    ) -> torch.Tensor:
        """`n` sequences of `length` ids, drawn after the prefix `cond` when one is given (the
        prefix itself is not returned). Completion (`given` with a `mask`) is supported for prefix
        masks only (True on the first k positions, the same for every row): the rest is
        generated after them; unobserved entries are ignored, whatever they hold."""
        check_num_samples(n)
        check_generator(generator)
        if method not in ("fast", "generic"):
            raise ChainruleError(f"method must be 'fast' or 'generic', got {method!r}")
        if given is not None or mask is not None:
            if cond is not None:
                raise ChainruleError("pass either a prefix as cond or given/mask, not both")
            if isinstance(given, torch.Tensor) and given.dim() == 1:
                given = given[None]
            given, obs = check_completion(
                given, mask, n, self.event_shape, self._check_tokens, device=self._device()
            )
            k = int(obs[0].sum())
            if not (obs == obs[0]).all() or not obs[0, :k].all():
                raise ChainruleError("sequence models complete prefixes only: mask must be True, ..., False")
            return self.generate(
                given[:, :k].long(), given.shape[1] - k, batch=n, generator=generator, cache=method == "fast"
            )
        if cond is not None and cond.dim() == 2 and cond.shape[0] not in (1, n):
            raise ChainruleError(f"cond holds {cond.shape[0]} prefixes for {n} sequences")
        out = self.generate(cond, length, batch=n, generator=generator, cache=method == "fast")
        return out[:, out.shape[1] - length :]

    def _check_tokens(self, x: torch.Tensor, what: str) -> None:
        check_discrete(x if x.is_floating_point() else x.float(), self.num_values, what)
