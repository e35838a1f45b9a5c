"""Lossless compression with a model: an arithmetic coder driven by an autoregressive model's
conditionals (`compress`, `decompress`), and the compressed file format."""
