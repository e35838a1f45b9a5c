"""Drive the arithmetic coder with an autoregressive model's conditionals.

Encoder and decoder must quantise *bit-identical* probabilities, so both walk the same code path:
the model's fast sampler (`decode` with a choice rule for image models, the cached generator
`generate(choose=...)` for sequence models), over the same chunks of images, in float64 from the
same parameters. The encoder's choice rule encodes the true value of each dimension under its
conditional and returns it (teacher forcing through the sampler); the decoder's rule reads the
value from the code. Symbols are coded dimension by dimension in the model's `sampling_order()`,
and within a dimension image by image, one stream for the whole file (chunk after chunk).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from chainrule.coding.arithmetic import ArithmeticDecoder, ArithmeticEncoder, quantise_cdf
from chainrule.errors import ChainruleError
from chainrule.models.base import models_sequences

#: Images per chunk of the sampler (recorded in the file: the decoder must use the same chunks).
DEFAULT_CHUNK = 256


def check_codable(model) -> str:
    """'text' for a sequence model with a character vocabulary, 'images' for an unconditional
    autoregressive model of discrete values with one order; otherwise a clear ChainruleError."""
    name = model.registry_name
    if model.value_type == "continuous" or model.num_values < 2:
        raise ChainruleError(f"model {name!r} models continuous values; lossless coding needs discrete ones")
    if not model.exact_log_prob:
        raise ChainruleError(
            f"model {name!r} has no exact likelihood, so its conditionals cannot drive a code"
        )
    if models_sequences(model):
        return "text"
    if model.sampling_order() is None:
        raise ChainruleError(
            f"compression needs an autoregressive model of one order (FVSBN, NADE, MADE, PixelCNN, ...);"
            f" {name!r} has no single sampling order"
        )
    if model.conditioned_on != "nothing":
        raise ChainruleError(
            f"compression needs an unconditional model; {name!r} is conditioned on a {model.conditioned_on}"
        )
    if len(set(model.values_per_dimension() or [0])) != 1:
        raise ChainruleError(f"model {name!r} has dimensions of different cardinalities; it cannot be coded")
    return "images"


def _cdfs(head, params: torch.Tensor) -> np.ndarray:
    """Quantised CDFs (B, K + 1) of the head's conditionals `params`, computed in float64."""
    with torch.no_grad():
        probs = head.log_prob_all(params.double()).exp()
    return quantise_cdf(probs.cpu().numpy())


class _Bar:
    """A progress bar over coded symbols (`show` None: on a terminal only; True/False: always/never)."""

    def __init__(self, total: int, desc: str, show: bool | None) -> None:
        disable = None if show is None else not show
        self.bar = tqdm(total=total, desc=desc, unit="sym", unit_scale=True, disable=disable, leave=False)

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def _walk_images(model, n: int, chunk: int, rule_for, bar: _Bar) -> torch.Tensor:
    """Run `model.decode` chunk by chunk with the choice rule `rule_for(start, size)`."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            out.append(model.decode(size, rule_for(start, size), method="fast").cpu())
    finally:
        model.train(was_training)
        bar.close()
    return torch.cat(out)


def encode_images(model, x: torch.Tensor, chunk: int = DEFAULT_CHUNK, progress: bool | None = None) -> bytes:
    """The arithmetic code of images `x` (N, D) of levels under an image model's conditionals."""
    check_codable(model)
    x = model.prepare(x, "images to compress")
    codes = x.round().long().cpu().numpy()
    encoder, head = ArithmeticEncoder(), model.head
    bar = _Bar(codes.size, "compressing", progress)

    def rule_for(start: int, size: int):
        def choose(params: torch.Tensor, d: int) -> torch.Tensor:
            encoder.encode_rows(_cdfs(head, params), codes[start : start + size, d])
            bar.update(size)
            return x[start : start + size, d].to(device=params.device, dtype=params.dtype)

        return choose

    decoded = _walk_images(model, len(codes), chunk, rule_for, bar)
    if not torch.equal(decoded.round().long(), torch.from_numpy(codes)):
        raise ChainruleError("internal error: the sampler did not follow the encoded values")
    return encoder.finish()


def decode_images(
    model, code: bytes, n: int, chunk: int = DEFAULT_CHUNK, progress: bool | None = None
) -> torch.Tensor:
    """Images (n, D) of levels (int64) decoded from `code` by the model that encoded them."""
    check_codable(model)
    decoder, head = ArithmeticDecoder(code), model.head
    bar = _Bar(n * math.prod(model.event_shape), "decompressing", progress)

    def rule_for(start: int, size: int):
        def choose(params: torch.Tensor, d: int) -> torch.Tensor:
            values = decoder.decode_rows(_cdfs(head, params))
            bar.update(size)
            return torch.from_numpy(values).to(device=params.device, dtype=params.dtype)

        return choose

    return _walk_images(model, n, chunk, rule_for, bar).round().long()


def _generate(model, length: int, choose) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return model.generate(None, length, batch=1, choose=choose)[0].cpu()
    finally:
        model.train(was_training)


def encode_tokens(model, ids: torch.Tensor, progress: bool | None = None) -> bytes:
    """The arithmetic code of one token sequence `ids` (T,) under a sequence model, from its start."""
    if check_codable(model) != "text":
        raise ChainruleError(f"model {model.registry_name!r} is not a sequence model")
    ids = model.tokens(ids.reshape(1, -1), "tokens to compress")[0]
    codes = ids.cpu().numpy()
    encoder, head = ArithmeticEncoder(), model.head
    bar = _Bar(len(codes), "compressing", progress)

    def choose(logits: torch.Tensor, i: int) -> torch.Tensor:
        encoder.encode_rows(_cdfs(head, logits), codes[i : i + 1])
        bar.update(1)
        return ids[i : i + 1]

    try:
        decoded = _generate(model, len(codes), choose)
    finally:
        bar.close()
    if not torch.equal(decoded, torch.from_numpy(codes)):
        raise ChainruleError("internal error: the generator did not follow the encoded tokens")
    return encoder.finish()


def decode_tokens(model, code: bytes, length: int, progress: bool | None = None) -> torch.Tensor:
    """`length` token ids decoded from `code` by the sequence model that encoded them."""
    if check_codable(model) != "text":
        raise ChainruleError(f"model {model.registry_name!r} is not a sequence model")
    decoder, head = ArithmeticDecoder(code), model.head
    bar = _Bar(length, "decompressing", progress)

    def choose(logits: torch.Tensor, i: int) -> torch.Tensor:
        bar.update(1)
        return torch.from_numpy(decoder.decode_rows(_cdfs(head, logits))).to(logits.device)

    try:
        return _generate(model, length, choose)
    finally:
        bar.close()
