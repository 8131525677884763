"""Video latents end to end on the tiny Wan pipeline: shapes, frame rule, drops, reruns, normalisation, captions."""

import numpy as np
import pytest
import torch

from hf_assets.cache.latents import normalise_latents, open_latents
from hf_assets.cache.manifest import read_manifest
from hf_assets.cache.tables import load_table
from hf_assets.cache.verify import latent_shape_mismatches
from hf_assets.config import parse_config
from hf_assets.data.buckets import assign_buckets
from hf_assets.data.frame_selection import assign_frames
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import open_split
from hf_assets.encode import clip_media
from hf_assets.encode.clip_media import video_factors_for, wanted_video_latents
from hf_assets.encode.encoder_set import Encoders
from hf_assets.encode.engine import update_latents
from hf_assets.encode.engine_types import EncodeSettings, LatentSettings
from hf_assets.encode.video_vae import encode_clips
from hf_assets.testing.tiny_pipelines import build_tiny_pipeline
from hf_assets_tests.videogen import damaged_payload_clip, encode_clip, unsupported_codec_clip

# (width, height, frames, fps): 17 frames keep 17 (17 % 4 == 1); 13 keep 13; 10 trim to 9; 6 pass the scan
# (min_frames 6) and trim to 5 for the VAE, kept: min_frames chooses source clips, not trimmed ones
CLIPS = [(64, 48, 17, 24), (48, 64, 13, 30), (64, 64, 10, 12), (80, 48, 6, 24)]
ENTRY = {
    "id": "clips",
    "type": "huggingface",
    "dataset_type": "video",
    "dataset_name": "data/clips",
    "caption_strategy": "huggingface",
    "metadata_backend": "huggingface",
    "image_column": "video",
    "caption_column": "caption",
    "huggingface": {"num_frames_column": "frame_count", "fps_column": "fps"},
    "video": {"num_frames": 17, "min_frames": 6},
    "resolution": 48,
    "resolution_type": "pixel",
    "aspect_bucket_alignment": 16,
}


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("wan") / "tiny-wan", "wan")


@pytest.fixture
def dataset(tmp_path):
    import datasets

    clips = [encode_clip(w, h, n, fps=fps, seed=i) for i, (w, h, n, fps) in enumerate(CLIPS)]
    clips += [damaged_payload_clip(encode_clip(64, 48, 9, seed=9)), unsupported_codec_clip()]
    rows = {
        "video": clips,
        "caption": [f"a clip number {i}" for i in range(len(clips))],
        "frame_count": [n for _, _, n, _ in CLIPS] + [9, 9],
        "fps": [float(f) for *_, f in CLIPS] + [24.0, 24.0],
    }
    folder = tmp_path / "data" / "clips" / "data"
    folder.mkdir(parents=True)
    datasets.Dataset.from_dict(rows).to_parquet(str(folder / "train.parquet"))
    return tmp_path


def encode(root, wan, **video):
    entry = {**ENTRY, "video": {**ENTRY["video"], **video}}
    backend = parse_config([entry], root / "dataloader.json").backends[0]
    split = open_split(backend)
    index, dropped_at_scan = build_filtered_index(split, backend)
    buckets = assign_frames(assign_buckets(index, backend.buckets, backend.id), backend.video)
    models = Encoders(str(wan))
    factors = video_factors_for(models)
    settings = LatentSettings(models.vae_identity(), "torch.float32", "torch.float32")
    wanted = wanted_video_latents(buckets, split, "video", settings, factors, tiled=True, memo_dir=backend.metadata_dir)
    settings = EncodeSettings(batch_size=8, decode_workers=2)  # clips: a quarter of the image batch, 2
    meta = {**factors, "backend": "clips"}
    report = update_latents(wanted, split, "video", models.vae, backend.vae_dir, meta, settings, media=clip_media.CLIPS)
    return backend, buckets, factors, report, dropped_at_scan


def test_latents_are_c_by_wan_frames_by_h8_by_w8_and_bad_clips_are_dropped_with_reasons(dataset, wan):
    backend, buckets, factors, report, scanned = encode(dataset, wan)
    latents = open_latents(backend.vae_dir)
    assert factors["temporal_downscale"] == 4 and factors["downscale"] == 8 and factors["latent_channels"] == 4
    assert sorted(latents) == ["0.mp4", "1.mp4", "2.mp4", "3.mp4"] and report.encoded == 4
    for name in latents:
        row = latents.entry(name)
        t = row["num_frames"]
        assert t % 4 == 1
        assert tuple(latents[name].shape) == (4, 1 + (t - 1) // 4, row["target_height"] // 8, row["target_width"] // 8)
    assert [latents.entry(n)["num_frames"] for n in ("0.mp4", "1.mp4", "2.mp4", "3.mp4")] == [17, 13, 9, 5]
    assert latents.entry("1.mp4")["fps"] == 30.0
    assert scanned["unsupported_codec"] == 1
    assert list(report.dropped) == ["4.mp4"] and report.dropped["4.mp4"].startswith("corrupt_video: CorruptVideo")
    dropped = load_table(backend.vae_dir, "dropped")
    assert dropped.column("filename").to_pylist() == ["4.mp4"]
    assert latent_shape_mismatches(read_manifest(backend.vae_dir).table, 4, 8).passed
    assert not latent_shape_mismatches(read_manifest(backend.vae_dir).table, 4, 16).passed


def test_num_frames_below_min_frames_encodes_every_kept_clip_at_num_frames(dataset, wan):
    # SimpleTuner: min_frames chooses the source clips (10 frames or more: 3 of the 4 readable ones; the damaged clip's
    # column says 9), num_frames is what each is trimmed to; nothing the scan kept is dropped for frame count later.
    backend, buckets, _, report, scanned = encode(dataset, wan, num_frames=5, min_frames=10)
    assert scanned["too_few_frames"] == 2 and sorted(buckets.column("filename").to_pylist()) == [
        "0.mp4",
        "1.mp4",
        "2.mp4",
    ]
    latents = open_latents(backend.vae_dir)
    assert sorted(latents) == ["0.mp4", "1.mp4", "2.mp4"] and report.encoded == 3
    assert {latents.entry(name)["num_frames"] for name in latents} == {5}
    assert all(tuple(latents[name].shape)[1] == 2 for name in latents)  # 1 + (5 - 1) / 4 latent frames
    assert not any(reason.startswith("too_few_frames") for reason in report.dropped.values())


def test_rerun_encodes_nothing_and_a_changed_num_frames_reencodes_exactly_the_affected_clips(dataset, wan):
    encode(dataset, wan)
    _, _, _, again, _ = encode(dataset, wan)
    assert again.encoded == 0 and again.reused == 4
    assert "4.mp4" in again.dropped  # the undecodable clip is remembered, not decoded again
    backend, _, _, changed, _ = encode(dataset, wan, num_frames=13)
    assert changed.encoded == 1 and changed.reused == 3  # only the 17-frame clip now trains on 13
    assert open_latents(backend.vae_dir).entry("0.mp4")["num_frames"] == 13


def test_streamed_decode_matches_a_whole_clip_decode_and_the_latent_matches_a_bare_vae_forward(dataset, wan):
    import av

    from hf_assets.encode.frame_decode import ClipSpec, load_clip

    backend, buckets, _, _, _ = encode(dataset, wan)
    row = next(r for r in buckets.to_pylist() if r["filename"] == "0.mp4")
    data = open_split(backend).table.column("video")[0].as_py()
    data = data["bytes"] if isinstance(data, dict) else data
    spec = ClipSpec(
        0,
        17,
        (row["resize_width"], row["resize_height"]),
        (
            row["crop_left"],
            row["crop_top"],
            row["crop_left"] + row["target_width"],
            row["crop_top"] + row["target_height"],
        ),
    )
    clip = load_clip(data, spec)
    from io import BytesIO

    from PIL import Image

    with av.open(BytesIO(data)) as container:
        frames = [f.to_image() for f in container.decode(video=0)]
    reference = np.stack(
        [
            np.asarray(f.convert("RGB").resize(spec.resize, Image.Resampling.LANCZOS).crop(spec.crop))
            for f in frames[:17]
        ]
    )
    assert np.array_equal(clip, reference)
    later = load_clip(data, ClipSpec(8, 5, spec.resize, spec.crop))  # seeks instead of decoding from the top
    assert np.array_equal(later, reference[8:13])
    vae = Encoders(str(wan)).vae()
    mean, _ = encode_clips(vae, clip_media.ClipEncoder(vae).pixels([clip]))
    assert torch.allclose(open_latents(backend.vae_dir)["0.mp4"], mean[0], atol=1e-5)


def test_sample_normalises_as_the_wan_pipeline_does(wan):
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    models = Encoders(str(wan))
    vae, (text,) = models.vae(), models.text_encoders()
    pipe = WanImageToVideoPipeline(
        tokenizer=text.tokenizer, text_encoder=text.model, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler()
    )
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    _, condition = pipe.prepare_latents(image, 1, 4, 32, 48, num_frames=5, dtype=torch.float32, device="cpu")
    video = torch.cat([image.unsqueeze(2), image.new_zeros(1, 3, 4, 32, 48)], dim=2)
    mean, _ = encode_clips(vae, video)
    ours = normalise_latents(mean, video_factors_for(models))
    assert torch.allclose(ours, condition[:, 4:], atol=1e-5)  # the first 4 channels are the pipeline's frame mask


def test_ltx_normalisation_equals_the_ltx_pipelines_own():
    from diffusers import LTXPipeline

    z = torch.randn(2, 8, 3, 4, 5)
    mean, std = torch.randn(8), torch.rand(8) + 0.5
    meta = {"latents_mean": mean.tolist(), "latents_std": std.tolist(), "scaling_factor": 0.7, "temporal_downscale": 8}
    expected = LTXPipeline._normalize_latents(z, mean, std, 0.7)
    assert torch.allclose(normalise_latents(z, meta), expected, atol=1e-6)
    assert torch.allclose(normalise_latents(z[0], meta), expected[0], atol=1e-6)


def test_wan_caption_embeddings_equal_the_pipelines_encode_prompt(wan):
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

    from hf_assets.encode.text import encode_captions

    models = Encoders(str(wan))
    encoders = models.text_encoders()
    assert models.family() == "wan" and encoders[0].kind == "umt5"
    pipe = WanPipeline(
        tokenizer=encoders[0].tokenizer,
        text_encoder=encoders[0].model,
        vae=models.vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )
    captions = ["a red  cat &amp; a dog ", "the blue photo of a dog on a cat with red"]
    expected, _ = pipe.encode_prompt(
        captions, do_classifier_free_guidance=False, max_sequence_length=24, device=torch.device("cpu")
    )
    ours = encode_captions(encoders, captions, "wan", max_length=24)
    for i in range(2):
        assert torch.allclose(ours[i]["prompt_embeds"], expected[i], atol=1e-6)
        assert int(ours[i]["attention_mask"].sum()) == int((expected[i].abs().sum(-1) > 0).sum())


@pytest.mark.parametrize("family", ["ltx", "cogvideox"])
def test_t5_video_caption_embeddings_equal_the_pipelines_encode_prompt(tmp_path, family):
    import diffusers

    from hf_assets.encode.model_loading import TextEncoder
    from hf_assets.encode.text import encode_captions
    from hf_assets.testing.tiny_pipelines import _save_t5_tokenizer, _t5_model

    torch.manual_seed(0)
    tokenizer = _save_t5_tokenizer(tmp_path / "tokenizer")
    model = _t5_model(32, tokenizer)
    encoder = TextEncoder(tokenizer, model, "text_encoder", 20, "t5")
    cls = {"ltx": diffusers.LTXPipeline, "cogvideox": diffusers.CogVideoXPipeline}[family]
    pipe = cls(
        tokenizer=tokenizer,
        text_encoder=model,
        vae=None,
        transformer=None,
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
    )
    captions = ["a red cat on a dog", "the blue photo"]
    expected = pipe.encode_prompt(
        captions, do_classifier_free_guidance=False, max_sequence_length=20, device=torch.device("cpu")
    )
    ours = encode_captions([encoder], captions, family, max_length=20)
    for i in range(2):
        assert torch.allclose(ours[i]["prompt_embeds"], expected[0][i], atol=1e-6)
    if family == "ltx":  # LTX's encode_prompt also returns the attention mask
        assert torch.equal(ours[0]["attention_mask"].bool(), expected[1][0].bool())
