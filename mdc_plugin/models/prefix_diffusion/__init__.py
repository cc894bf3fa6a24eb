"""Prefix-diffusion: image-prefix continuous embedding diffusion captioning."""
