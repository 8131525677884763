"""Train a tiny random-weight ControlNet beside a frozen tiny SDXL UNet on one prepared backend and its ControlNet
conditioning dataset, from the caches alone.

    .venv/bin/python -m examples.train_tiny_controlnet --partition local-folder --steps 40

Reads what `make demo` stored (DAGSTER_HOME defaults to .dagster_home, the config to HF_ASSETS_DATALOADER_CONFIG or
the demo's). The backend's conditioning dataset (`--conditioning`, default: its first `controlnet` one) gives each
sample's control image at the sample's exact size and crop, stored beside its latents (given or generated, e.g. a
`conditioning: [{"type": "canny", "conditioning_type": "controlnet"}]` on the backend). A diffusers
`ControlNetModel.from_unet` copy of the UNet is trained as diffusers' `train_controlnet_sdxl.py` trains it: the UNet
is frozen, the ControlNet's residuals join the UNet's, and its `controlnet_cond` is the control image in [0, 1]
(B, 3, H, W), which the ControlNet's conditioning embedding brings down to the latents' size.
"""

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from examples.train_tiny import SDXL_SCHEDULE, sdxl_inputs, tiny_sdxl_unet, train_loop

ROOT = Path(__file__).resolve().parents[1]
# The control image's embedding downsamples by 2 per entry after the first: 8 for four entries, the VAE's factor.
PIXEL_EMBEDDING = (8, 16, 16, 16)


def tiny_controlnet(unet, control: torch.Tensor, latents: torch.Tensor):
    """A diffusers ControlNetModel copied from `unet` (same blocks, zero-initialised output convolutions), taking
    `control`, a batch of control images whose embedding (downsampling by 8) has the size of `latents`."""
    from diffusers import ControlNetModel

    factor = 2 ** (len(PIXEL_EMBEDDING) - 1)
    if tuple(control.shape[-2:]) != tuple(s * factor for s in latents.shape[-2:]):
        raise ValueError(
            f"control images {tuple(control.shape)} are not {factor}x the latents {tuple(latents.shape)}: the "
            "conditioning dataset must be strict (controlnet), cropped as its source"
        )
    return ControlNetModel.from_unet(
        unet, conditioning_embedding_out_channels=PIXEL_EMBEDDING, conditioning_channels=control.shape[1]
    )


def control_image(batch: dict, conditioning_id: str) -> torch.Tensor:
    """The batch's control images (B, 3, H, W) in [0, 1], as the cache stores them beside the control latents."""
    partner = batch["conditioning"][conditioning_id]
    if "pixel_values" not in partner:
        raise ValueError(
            f"'{conditioning_id}' stores no control images: give it conditioning_type controlnet and materialize its "
            "vae_latents again"
        )
    return partner["pixel_values"]


def training_step(unet, controlnet, scheduler, batch, conditioning_id, generator, device) -> torch.Tensor:
    """The epsilon-prediction loss of one batch through ControlNet and UNet, as diffusers' SDXL ControlNet script."""
    latents, prompt_embeds, pooled, time_ids = (t.to(device) for t in sdxl_inputs(batch))
    controlnet_cond = control_image(batch, conditioning_id).to(device)
    noise = torch.randn(latents.shape, generator=generator).to(device)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), generator=generator)
    timesteps = timesteps.to(device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    added_cond_kwargs = {"text_embeds": pooled, "time_ids": time_ids.to(prompt_embeds.dtype)}
    down, mid = controlnet(
        noisy,
        timesteps,
        encoder_hidden_states=prompt_embeds,
        added_cond_kwargs=added_cond_kwargs,
        controlnet_cond=controlnet_cond,
        return_dict=False,
    )
    prediction = unet(
        noisy,
        timesteps,
        encoder_hidden_states=prompt_embeds,
        added_cond_kwargs=added_cond_kwargs,
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid,
    ).sample
    return F.mse_loss(prediction.float(), noise.float(), reduction="mean")


def train(
    dataset,
    sampler,
    conditioning_id: str,
    steps: int,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    num_workers: int = 0,
    log=print,
):
    """Train a fresh tiny ControlNet for `steps` batches next to a frozen tiny UNet; (controlnet, loss per step)."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(**SDXL_SCHEDULE)
    frozen = {}

    def build(batch):  # sized from the caches: latent channels, text and pooled widths, the control input
        latents, prompt_embeds, pooled, _ = sdxl_inputs(batch)
        unet = tiny_sdxl_unet(latents.shape[1], prompt_embeds.shape[-1], pooled.shape[-1]).to(device)
        frozen["unet"] = unet.requires_grad_(False)
        return tiny_controlnet(unet, control_image(batch, conditioning_id), latents).to(device).train()

    def step(controlnet, batch, generator):
        return training_step(frozen["unet"], controlnet, scheduler, batch, conditioning_id, generator, device)

    def describe(batch) -> str:
        shape = "x".join(map(str, control_image(batch, conditioning_id).shape))
        return f"bucket {batch['bucket'][0]:>5}  control {shape}"

    return train_loop(dataset, sampler, steps, build, step, describe, lr, seed, num_workers, log)


def controlnet_partner(config, partition: str) -> str | None:
    """The first conditioning dataset of `partition` whose conditioning_type is controlnet."""
    for backend_id in config.conditioning_of(partition):
        if config.backend(backend_id).conditioning.type == "controlnet":
            return backend_id
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition", default="local-folder", help="backend id of the source images")
    parser.add_argument("--conditioning", help="its conditioning dataset's id (default: its first controlnet one)")
    parser.add_argument("--config", help="dataloader JSON (default: HF_ASSETS_DATALOADER_CONFIG or the demo's)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--save", type=Path, help="save the trained ControlNet here (diffusers folder)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home"))  # where `make demo` stored its runs
    from hf_assets.config import load_config
    from hf_assets.definitions import build_definitions
    from hf_assets.training import BucketBatchSampler, CachedSamples

    config = load_config(args.config)
    try:
        config.backend(args.partition)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    conditioning_id = args.conditioning or controlnet_partner(config, args.partition)
    if conditioning_id is None:
        print(f"{args.partition} has no controlnet conditioning dataset; pass --conditioning", file=sys.stderr)
        return 2
    defs = build_definitions(args.config)
    dataset = CachedSamples.from_definitions(defs, args.partition, seed=args.seed, conditioning=[conditioning_id])
    if len(dataset) == 0:
        print("nothing to train on: materialize both backends first (make demo)", file=sys.stderr)
        return 1
    sampler = BucketBatchSampler.from_samples(dataset, args.batch_size, seed=args.seed)
    print(f"{args.partition} + {conditioning_id}: {dataset!r}\n  {sampler.summary}", flush=True)
    controlnet, losses = train(
        dataset, sampler, conditioning_id, args.steps, args.lr, args.seed, args.device, args.num_workers
    )
    k = max(1, len(losses) // 4)
    print(f"mean loss of the first {k} steps {sum(losses[:k]) / k:.4f}, of the last {k} {sum(losses[-k:]) / k:.4f}")
    if args.save:
        controlnet.save_pretrained(args.save)
        print(f"saved the ControlNet to {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
