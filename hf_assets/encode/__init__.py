"""Encoders: VAE latents and caption embeddings from a diffusers-layout pipeline (no heavy imports here)."""
