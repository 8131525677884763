"""Train a tiny random-weight SDXL UNet on one prepared backend's caches: the trainer's door, end to end.

    .venv/bin/python -m examples.train_tiny --partition photos --steps 40

Reads what `make demo` stored (DAGSTER_HOME defaults to .dagster_home, the config to HF_ASSETS_DATALOADER_CONFIG or
the demo's). No VAE or text encoder is loaded: latents, prompt embeddings, pooled embeddings and SDXL time ids come
from the caches and reach a diffusers UNet2DConditionModel as diffusers' SDXL training script gives them.
"""

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
TIME_IDS = 6  # original (h, w), crop (top, left), target (h, w)
SDXL_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
}


def tiny_sdxl_unet(latent_channels: int, text_width: int, pooled_width: int, time_embed_width: int = 8):
    """A two-block UNet2DConditionModel in SDXL's layout (text_time added embedding), random weights."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        in_channels=latent_channels,
        out_channels=latent_channels,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        cross_attention_dim=text_width,  # the width of the cached prompt_embeds (both encoders' states, joined)
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_width,
        # SDXL: the pooled text embedding and the 6 time ids, each embedded in time_embed_width sinusoids
        projection_class_embeddings_input_dim=pooled_width + TIME_IDS * time_embed_width,
        norm_num_groups=8,
    )


def sdxl_inputs(batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(latents, prompt_embeds, pooled_prompt_embeds, time_ids) of a batch, refusing caches of another family."""
    missing = {"prompt_embeds", "pooled_prompt_embeds"} - set(batch)
    if missing:
        raise ValueError(
            f"the text_embeds cache lacks {sorted(missing)}: this example trains an SDXL UNet; encode the backend "
            "with an SDXL pipeline (HF_ASSETS_MODEL)"
        )
    return batch["latents"], batch["prompt_embeds"], batch["pooled_prompt_embeds"], batch["time_ids"]


def training_step(unet, scheduler, batch: dict, generator: torch.Generator, device: str) -> torch.Tensor:
    """The epsilon-prediction loss of one batch, with the UNet fed as diffusers' train_text_to_image_sdxl.py does."""
    latents, prompt_embeds, pooled, time_ids = (t.to(device) for t in sdxl_inputs(batch))
    noise = torch.randn(latents.shape, generator=generator).to(device)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), generator=generator)
    timesteps = timesteps.to(device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    added_cond_kwargs = {"text_embeds": pooled, "time_ids": time_ids.to(prompt_embeds.dtype)}
    prediction = unet(noisy, timesteps, prompt_embeds, added_cond_kwargs=added_cond_kwargs).sample
    return F.mse_loss(prediction.float(), noise.float(), reduction="mean")


def train_loop(dataset, sampler, steps: int, build, step, describe, lr, seed, num_workers, log, clip=1.0):
    """`steps` optimizer steps over reshuffled epochs: `build(batch)` makes the trained model from the first batch
    (after seeding torch), `step(model, batch, generator)` gives a batch's loss, `describe(batch)` the middle of its
    log line; AdamW, gradients clipped to `clip` (None: not clipped). Returns (model, the loss of each step)."""
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
                model = build(batch)
                optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
            loss = step(model, batch, generator)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            log(f"step {len(losses)}  epoch {epoch}  {describe(batch)}  loss {losses[-1]:.4f}")
            if len(losses) == steps:
                break
        epoch += 1
    return model, losses


def train(
    dataset, sampler, steps: int, lr: float = 1e-3, seed: int = 0, device: str = "cpu", num_workers: int = 0, log=print
):
    """Train a fresh tiny UNet for `steps` batches (epochs reshuffled); returns (unet, the loss of each step)."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(**SDXL_SCHEDULE)

    def build(batch):  # sized from the caches: latent channels, text and pooled widths
        latents, prompt_embeds, pooled, _ = sdxl_inputs(batch)
        return tiny_sdxl_unet(latents.shape[1], prompt_embeds.shape[-1], pooled.shape[-1]).to(device)

    def describe(batch) -> str:
        return f"bucket {batch['bucket'][0]:>5}  latents {'x'.join(map(str, batch['latents'].shape))}"

    return train_loop(
        dataset,
        sampler,
        steps,
        build,
        lambda unet, batch, generator: training_step(unet, scheduler, batch, generator, device),
        describe,
        lr,
        seed,
        num_workers,
        log,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition", default="photos", help="backend id (a partition of the hf_assets assets)")
    parser.add_argument("--config", help="dataloader JSON (default: HF_ASSETS_DATALOADER_CONFIG or the demo's)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--short-buckets", choices=["repeat", "drop", "keep"], default="repeat")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--save", type=Path, help="save the trained UNet here (diffusers folder)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home"))  # where `make demo` stored its runs
    from hf_assets.config import load_config
    from hf_assets.definitions import build_definitions
    from hf_assets.training import BucketBatchSampler, CachedSamples

    try:
        load_config(args.config).backend(args.partition)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 2
    defs = build_definitions(args.config)
    dataset = CachedSamples.from_definitions(defs, args.partition, seed=args.seed)
    if len(dataset) == 0:
        print("nothing to train on: materialize vae_latents and text_embeds first (make demo)", file=sys.stderr)
        return 1
    sampler = BucketBatchSampler.from_samples(
        dataset, args.batch_size, seed=args.seed, short_buckets=args.short_buckets
    )
    print(f"{args.partition}: {dataset!r}\n  {sampler.summary}", flush=True)
    if dataset.frames is not None:  # clips: a tiny video transformer instead of the SDXL UNet
        from examples.train_tiny_video import train_video as train_fn
    else:
        train_fn = train
    unet, losses = train_fn(dataset, sampler, args.steps, args.lr, args.seed, args.device, args.num_workers)
    k = max(1, len(losses) // 4)
    print(f"mean loss of the first {k} steps {sum(losses[:k]) / k:.4f}, of the last {k} {sum(losses[-k:]) / k:.4f}")
    if args.save:
        unet.save_pretrained(args.save)
        print(f"saved the UNet to {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
