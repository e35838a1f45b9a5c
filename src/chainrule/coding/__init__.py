"""Lossless compression with a model: an arithmetic coder driven by an autoregressive model's
conditionals (`compress`, `decompress`), and the compressed file format."""

from chainrule.coding.arithmetic import ArithmeticDecoder, ArithmeticEncoder, quantise_cdf
from chainrule.coding.container import compress, decompress, weights_sha256

__all__ = [
    "ArithmeticDecoder",
    "ArithmeticEncoder",
    "compress",
    "decompress",
    "quantise_cdf",
    "weights_sha256",
]
