"""A few optimisation steps of a tiny stand-in denoiser on one prepared backend: the trainer's door, end to end.

    .venv/bin/python -m examples.train_tiny --partition photos --steps 5

Reads what `make demo` stored (DAGSTER_HOME defaults to .dagster_home, the config to HF_ASSETS_DATALOADER_CONFIG or
the demo's); no model is loaded: latents and caption embeddings come from the caches.
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]


class TinyDenoiser(nn.Module):
    """Predicts the noise in noisy latents from a few convolutions, shifted per channel by the text and time."""

    def __init__(self, latent_channels: int, text_width: int, hidden: int = 32):
        super().__init__()
        self.hidden = hidden
        self.conv_in = nn.Conv2d(latent_channels, hidden, 3, padding=1)
        self.condition = nn.Linear(text_width + 6 + hidden, hidden)  # pooled text + SDXL time ids + timestep
        self.conv_mid = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.conv_out = nn.Conv2d(hidden, latent_channels, 3, padding=1)

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, pooled: torch.Tensor, time_ids: torch.Tensor):
        half = self.hidden // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=noisy.device) / half)
        angles = timesteps.float()[:, None] * freqs[None]
        time_features = torch.cat([angles.sin(), angles.cos()], dim=1)
        size_features = time_ids.float() / 1024  # pixel sizes to about unit scale
        shift = self.condition(torch.cat([pooled.float(), size_features, time_features], dim=1))
        h = F.silu(self.conv_in(noisy) + shift[:, :, None, None])
        return self.conv_out(F.silu(self.conv_mid(h)))


def pooled_text(batch: dict) -> torch.Tensor:
    """The pooled caption embedding: stored for SDXL/SD3/Flux; the mean over tokens for families without one."""
    if "pooled_prompt_embeds" in batch:
        return batch["pooled_prompt_embeds"]
    return batch.get("prompt_embeds", batch.get("last_hidden_state")).float().mean(dim=1)


def batches_forever(loader: DataLoader, dataset, sampler):
    """Batches across epochs, each epoch reshuffled with fresh noise and caption variants."""
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        yield from ((epoch, batch) for batch in loader)
        epoch += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition", default="photos", help="backend id (a partition of the hf_assets assets)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home"))  # where `make demo` stored its runs
    from hf_assets.config import load_config
    from hf_assets.definitions import defs
    from hf_assets.training import BucketBatchSampler, CachedSamples

    try:
        load_config().backend(args.partition)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    started = time.perf_counter()
    dataset = CachedSamples.from_definitions(defs, args.partition, seed=args.seed)
    sampler = BucketBatchSampler.from_samples(dataset, batch_size=args.batch_size, seed=args.seed)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=args.num_workers)
    print(f"{args.partition}: {dataset!r}, {len(sampler)} batches per epoch "
          f"({time.perf_counter() - started:.2f}s to open)", flush=True)
    if len(dataset) == 0:
        print("nothing to train on: materialize vae_latents and text_embeds first (make demo)", file=sys.stderr)
        return 1

    torch.manual_seed(args.seed)
    # SDXL's training schedule: "scaled_linear" betas from 0.00085 to 0.012 over 1000 steps.
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, dim=0).float().to(args.device)
    model = optimizer = None
    for step, (epoch, batch) in zip(range(1, args.steps + 1), batches_forever(loader, dataset, sampler)):
        latents = batch["latents"].to(args.device)
        pooled, time_ids = pooled_text(batch).to(args.device), batch["time_ids"].to(args.device)
        if model is None:  # sized from the caches: latent channels and pooled text width
            model = TinyDenoiser(latents.shape[1], pooled.shape[1]).to(args.device)
            optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, 1000, (latents.shape[0],), device=args.device)
        a = alphas_cumprod[timesteps][:, None, None, None]
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        loss = F.mse_loss(model(noisy, timesteps, pooled, time_ids), noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        shape = "x".join(map(str, latents.shape[1:]))
        print(f"step {step}  epoch {epoch}  bucket {batch['bucket'][0]:>5}  latents {len(latents)}x{shape}  "
              f"loss {loss.item():.4f}  e.g. {batch['caption'][0]!r}", flush=True)
    print(f"done in {time.perf_counter() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
