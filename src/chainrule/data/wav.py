"""8-bit μ-law audio from a WAV file (`--data wav:PATH`), as in WaveNet (van den Oord et al. 2016).

PCM WAV files of 8, 16, 24 or 32 bits are read with the standard library; channels are
averaged to mono; samples in [-1, 1] are companded with μ = 255 and quantized to 256 values.
The file is split by time into 90 % / 5 % / 5 % train/validation/test.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import torch

from chainrule.data.text import TEST_FRACTION, VAL_FRACTION, SequenceDataset
from chainrule.errors import ChainruleError
from chainrule.persistence import atomic_write_bytes

MU = 255


def mu_law_encode(x: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Samples in [-1, 1] -> ints in [0, mu]."""
    x = x.clamp(-1, 1)
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / np.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).floor().long().clamp(0, mu)


def mu_law_decode(q: torch.Tensor, mu: int = MU) -> torch.Tensor:
    """Ints in [0, mu] -> samples in [-1, 1] (the inverse of `mu_law_encode` up to quantization)."""
    y = 2 * q.double() / mu - 1
    return (torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu).float()


def read_wav(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Mono float samples in [-1, 1] and the sample rate; clear errors for what is not PCM WAV."""
    path = Path(path)
    if not path.is_file():
        raise ChainruleError(f"WAV file {str(path)!r} not found")
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            declared = w.getnframes() * width * channels
            # the data chunk's size is checked against the file before reading: a size that points
            # past the end would otherwise be read short without a word (a truncated or lying file)
            if declared > path.stat().st_size:
                raise ChainruleError(
                    f"{path}: its data chunk declares {declared:,} bytes but the whole file has"
                    f" {path.stat().st_size:,}; the file is truncated or its header is wrong"
                )
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        why = str(e) or "it ends inside its header"
        raise ChainruleError(f"{path} is not a PCM WAV file ({why})") from None
    if len(raw) < declared:
        raise ChainruleError(
            f"{path}: its data chunk declares {declared:,} bytes but holds {len(raw):,}; the file is"
            " truncated or its header is wrong"
        )
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128) / 128
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)
    elif width in (2, 4):
        x = np.frombuffer(raw, f"<i{width}").astype(np.float64) / float(1 << (8 * width - 1))
    else:
        raise ChainruleError(f"{path}: {8 * width}-bit samples are not supported (8, 16, 24 or 32)")
    x = x.reshape(-1, channels).mean(1)
    if x.size == 0:
        raise ChainruleError(f"{path} holds no audio samples")
    return torch.from_numpy(x).float(), rate


def write_wav(path: str | os.PathLike, x: torch.Tensor, rate: int) -> Path:
    """Write mono float samples in [-1, 1] as 16-bit PCM."""
    import io

    pcm = (x.clamp(-1, 1) * 32767).round().short().numpy().astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def wav_file(path: str | os.PathLike) -> SequenceDataset:
    """μ-law codes of a WAV file, split by time 90/5/5."""
    x, rate = read_wav(path)
    q = mu_law_encode(x)
    n = q.numel()
    if n < 100:
        raise ChainruleError(f"{path} has {n} samples; at least 100 are needed")
    a, b = round(n * (1 - VAL_FRACTION - TEST_FRACTION)), round(n * (1 - TEST_FRACTION))
    return SequenceDataset(
        name=f"wav:{path}",
        train=q[:a],
        val=q[a:b],
        test=q[b:],
        num_values=MU + 1,
        sample_rate=rate,
        description=f"{path}: {n:,} samples at {rate} Hz, 8-bit mu-law, split 90/5/5 by time",
    )
