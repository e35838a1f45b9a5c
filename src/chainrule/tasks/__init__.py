"""Tasks built on the model contract: completion (inpainting) and out-of-distribution scores
(`anomaly`, with `ood_metrics` and `compression`); PixelDefend and generative classification
follow (issue 8)."""
