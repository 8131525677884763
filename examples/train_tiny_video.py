"""A few flow-matching steps of a tiny random-weight WanTransformer3DModel on a video backend's caches.

Called by `examples.train_tiny` when the partition holds clips: latents (C, T', H/8, W/8), normalised as Wan's
pipeline does, and UMT5 caption embeddings come from the caches; frames and fps ride along in each batch.
"""

import torch
import torch.nn.functional as F

from examples.train_tiny import train_loop


def tiny_wan_transformer(latent_channels: int, text_width: int):
    """One layer of Wan's video transformer (patch 1x2x2, 2 heads of 12), random weights."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=latent_channels,
        out_channels=latent_channels,
        text_dim=text_width,
        freq_dim=16,
        ffn_dim=32,
        num_layers=1,
        rope_max_seq_len=64,
    )


def flow_matching_step(model, batch: dict, generator: torch.Generator, device: str) -> torch.Tensor:
    """Rectified-flow loss: x_t = (1 - t) x0 + t noise, the transformer predicts noise - x0 (Wan's objective)."""
    if "prompt_embeds" not in batch:
        raise ValueError("the text_embeds cache lacks prompt_embeds: encode the backend with a Wan pipeline")
    latents, text = batch["latents"].to(device), batch["prompt_embeds"].to(device)
    noise = torch.randn(latents.shape, generator=generator).to(device)
    t = torch.rand(len(latents), generator=generator).to(device)
    sigma = t.view(-1, 1, 1, 1, 1)
    noisy = (1 - sigma) * latents + sigma * noise
    prediction = model(noisy, (t * 1000).long(), text, return_dict=False)[0]
    return F.mse_loss(prediction.float(), (noise - latents).float())


def train_video(
    dataset, sampler, steps: int, lr: float = 1e-3, seed: int = 0, device: str = "cpu", num_workers: int = 0, log=print
):
    """Train a fresh tiny Wan transformer for `steps` batches of same-size, same-length clips; returns its losses."""

    def build(batch):
        return tiny_wan_transformer(batch["latents"].shape[1], batch["prompt_embeds"].shape[-1]).to(device)

    def describe(batch) -> str:
        shape = "x".join(map(str, batch["latents"].shape))
        return (
            f"bucket {batch['bucket'][0]}  frames {int(batch['frames'][0])}  fps {float(batch['fps'][0]):g}  "
            f"latents {shape}"
        )

    return train_loop(
        dataset,
        sampler,
        steps,
        build,
        lambda model, batch, generator: flow_matching_step(model, batch, generator, device),
        describe,
        lr,
        seed,
        num_workers,
        log,
        clip=None,
    )
