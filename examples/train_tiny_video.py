"""A few flow-matching steps of a tiny random-weight WanTransformer3DModel on a video backend's caches.

Called by `examples.train_tiny` when the partition holds clips: latents (C, T', H/8, W/8), normalised as Wan's
pipeline does, and UMT5 caption embeddings come from the caches; frames and fps ride along in each batch.
"""

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader


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
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers)
    generator = torch.Generator().manual_seed(seed)
    model = optimizer = None
    losses: list[float] = []
    epoch = 0
    while len(losses) < steps:
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        for batch in loader:
            if model is None:
                torch.manual_seed(seed)
                model = tiny_wan_transformer(batch["latents"].shape[1], batch["prompt_embeds"].shape[-1]).to(device)
                optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
            loss = flow_matching_step(model, batch, generator, device)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            shape = "x".join(map(str, batch["latents"].shape))
            log(
                f"step {len(losses)}  epoch {epoch}  bucket {batch['bucket'][0]}  frames {int(batch['frames'][0])}  "
                f"fps {float(batch['fps'][0]):g}  latents {shape}  loss {losses[-1]:.4f}"
            )
            if len(losses) == steps:
                break
        epoch += 1
    return model, losses
