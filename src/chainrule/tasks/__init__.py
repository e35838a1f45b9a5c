"""Tasks built on the model contract: completion (inpainting) now; anomaly scores, PixelDefend
and generative classification follow (issue 8)."""
