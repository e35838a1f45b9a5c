"""An integer arithmetic coder (Witten, Neal and Cleary 1987) with 32-bit registers.

A message of symbols, each coded under its own distribution given as a *quantised CDF* (integer
cumulative counts `cum[0] = 0 < cum[1] < ... < cum[K] = total <= 2^16`), becomes a string of bits
whose length is within about 2 bits of the sum of -log2(count / total) over the message: the
ideal code length of the quantised model. Every symbol gets a count of at least 1
(`quantise_cdf`), so nothing is uncodable, and with 32-bit registers the coding interval always
holds more than 2^30 integers, so each of the at most 2^16 counts keeps an interval of its own.

Underflow (the interval straddling the middle while shrinking) is handled by the classic
"bits to follow" counter; registers are Python integers, so there is no overflow to handle.
Decoding must be given the same CDFs in the same order as encoding: the decoder reads the bits
to recover each symbol, then narrows its interval exactly as the encoder did.
"""

from __future__ import annotations

import numpy as np

from chainrule.errors import ChainruleError

#: Register width in bits, and the largest total count a CDF may have (2^FREQUENCY_BITS).
CODE_BITS = 32
FREQUENCY_BITS = 16
MAX_TOTAL = 1 << FREQUENCY_BITS
_TOP = (1 << CODE_BITS) - 1
_HALF = 1 << (CODE_BITS - 1)
_QUARTER = 1 << (CODE_BITS - 2)


def quantise_cdf(probs: np.ndarray, total: int = MAX_TOTAL) -> np.ndarray:
    """Cumulative integer counts (..., K + 1) of distributions `probs` (..., K) over K symbols:
    count_k = floor(p_k (total - K)) + 1, so every symbol has at least 1 count and the counts sum
    to at most `total`. Computed in float64 from float64 input, so that an encoder and a decoder
    given the same probabilities get the same counts. Non-finite or negative entries count as 0."""
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[-1]
    if k < 2 or 2 * k > total or total > MAX_TOTAL:
        raise ChainruleError(f"cannot quantise {k} symbols into a total of {total} (at most {MAX_TOTAL})")
    p = np.where(np.isfinite(p), np.clip(p, 0.0, 1.0), 0.0)
    mass = p.sum(-1, keepdims=True)
    p = np.where(mass > 0, p / np.where(mass > 0, mass, 1.0), 1.0 / k)
    counts = np.floor(p * (total - k)).astype(np.int64) + 1
    cum = np.zeros((*p.shape[:-1], k + 1), dtype=np.int64)
    np.cumsum(counts, axis=-1, out=cum[..., 1:])
    return cum


def ideal_bits(cum: np.ndarray, symbols: np.ndarray) -> float:
    """Sum of -log2(count / total) of `symbols` (N,) under quantised CDFs `cum` (N, K + 1)."""
    rows = np.arange(len(symbols))
    counts = cum[rows, symbols + 1] - cum[rows, symbols]
    return float(-np.log2(counts / cum[:, -1]).sum())


class ArithmeticEncoder:
    """Encode symbols one CDF at a time; `finish()` returns the code as bytes (bits, MSB first)."""

    def __init__(self) -> None:
        self.low, self.high, self.pending = 0, _TOP, 0
        self.bits: list[int] = []
        self.count = 0

    def encode(self, cum_low: int, cum_high: int, total: int) -> None:
        """Narrow the interval to the symbol whose counts span [cum_low, cum_high) of `total`."""
        if not 0 <= cum_low < cum_high <= total <= MAX_TOTAL:
            raise ChainruleError(f"invalid symbol counts [{cum_low}, {cum_high}) of {total}")
        low, high, pending, bits = self.low, self.high, self.pending, self.bits
        span = high - low + 1
        high = low + span * cum_high // total - 1
        low = low + span * cum_low // total
        while True:
            if high < _HALF:
                bits.append(0)
                bits.extend([1] * pending)
                pending = 0
            elif low >= _HALF:
                bits.append(1)
                bits.extend([0] * pending)
                pending = 0
                low -= _HALF
                high -= _HALF
            elif low >= _QUARTER and high < _HALF + _QUARTER:
                pending += 1
                low -= _QUARTER
                high -= _QUARTER
            else:
                break
            low, high = 2 * low, 2 * high + 1
        self.low, self.high, self.pending = low, high, pending
        self.count += 1

    def encode_rows(self, cum: np.ndarray, symbols: np.ndarray) -> None:
        """Encode symbols[i] under the CDF cum[i] (N, K + 1), for i = 0..N-1 in turn."""
        symbols = np.asarray(symbols, dtype=np.int64)
        if symbols.min(initial=0) < 0 or symbols.max(initial=0) >= cum.shape[-1] - 1:
            raise ChainruleError(f"symbols must lie in 0..{cum.shape[-1] - 2}")
        rows = np.arange(len(symbols))
        lows, highs, totals = (
            cum[rows, symbols].tolist(),
            cum[rows, symbols + 1].tolist(),
            cum[:, -1].tolist(),
        )
        for lo, hi, total in zip(lows, highs, totals, strict=True):
            self.encode(lo, hi, total)

    def finish(self) -> bytes:
        """Flush the two bits that pin the final interval; the code, zero-padded to whole bytes."""
        self.pending += 1
        if self.low < _QUARTER:
            self.bits.append(0)
            self.bits.extend([1] * self.pending)
        else:
            self.bits.append(1)
            self.bits.extend([0] * self.pending)
        self.pending = 0
        return np.packbits(np.array(self.bits, dtype=np.uint8)).tobytes()


class ArithmeticDecoder:
    """Decode symbols from `code`, given the same CDFs in the same order as the encoder."""

    def __init__(self, code: bytes) -> None:
        self.bits = np.unpackbits(np.frombuffer(code, dtype=np.uint8)).tolist()
        self.at = 0
        self.low, self.high, self.value = 0, _TOP, 0
        for _ in range(CODE_BITS):
            self.value = 2 * self.value + self._bit()

    def _bit(self) -> int:
        """The next bit of the code; past its end, zeros (what the encoder's padding stands for)."""
        at = self.at
        self.at = at + 1
        return self.bits[at] if at < len(self.bits) else 0

    def decode(self, cum: list[int]) -> int:
        """The symbol s whose counts [cum[s], cum[s + 1]) hold the code's position; then narrow."""
        total = cum[-1]
        low, high, value = self.low, self.high, self.value
        span = high - low + 1
        target = ((value - low + 1) * total - 1) // span
        s = int(np.searchsorted(cum, target, side="right")) - 1 if len(cum) > 3 else int(target >= cum[1])
        high = low + span * cum[s + 1] // total - 1
        low = low + span * cum[s] // total
        while True:
            if high < _HALF:
                pass
            elif low >= _HALF:
                low -= _HALF
                high -= _HALF
                value -= _HALF
            elif low >= _QUARTER and high < _HALF + _QUARTER:
                low -= _QUARTER
                high -= _QUARTER
                value -= _QUARTER
            else:
                break
            low, high, value = 2 * low, 2 * high + 1, 2 * value + self._bit()
        self.low, self.high, self.value = low, high, value
        return s

    def decode_rows(self, cum: np.ndarray) -> np.ndarray:
        """One symbol under each CDF cum[i] (N, K + 1), for i = 0..N-1 in turn."""
        return np.array([self.decode(row) for row in cum.tolist()], dtype=np.int64)

    def overrun(self) -> int:
        """How many bits past the end of the code were read (a few at most for a valid code)."""
        return max(0, self.at - len(self.bits))
