"""Tasks built on the model contract: completion (inpainting), PixelDefend (attacks, detection by
likelihood rank, purification) and generative classification (issue 8)."""
