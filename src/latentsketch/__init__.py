"""latentsketch: one-shot drawing with latent diffusion models, as a DVC pipeline."""

__version__ = "0.1.0"
