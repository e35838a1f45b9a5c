"""Tasks built on the model contract: completion (inpainting), out-of-distribution scores
(`anomaly`, with `ood_metrics` and `compression`), PixelDefend (attacks, detection by likelihood
rank, purification) and generative classification (issue 8)."""
