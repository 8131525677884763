"""Locating and loading models: family detection, loaders, identities and errors that name the setting."""

import hashlib
import json
import os
import shutil

import pytest
import torch
from huggingface_hub.utils import filter_repo_objects

from hf_assets import env
from hf_assets.encode.model_files import ModelNotFound, download_patterns, model_identity, resolve_root
from hf_assets.encode.model_loading import as_dtype, detect_family, load_text_encoders, load_vae

CLASSES = {
    "sd": ["CLIPTextModel"],
    "sdxl": ["CLIPTextModel", "CLIPTextModelWithProjection"],
    "sd3": ["CLIPTextModelWithProjection", "CLIPTextModelWithProjection", "T5EncoderModel"],
    "flux": ["CLIPTextModel", "T5EncoderModel"],
}
LENGTHS = {"sd": [77], "sdxl": [77, 77], "sd3": [77, 77, 256], "flux": [77, 512]}


@pytest.mark.parametrize("family", sorted(CLASSES))
def test_detect_family_and_load(tiny_pipelines, loaded, family):
    assert detect_family(tiny_pipelines[family]) == family
    vae, encoders = loaded(family)
    assert type(vae).__name__ == "AutoencoderKL" and not vae.training
    assert [type(e.model).__name__ for e in encoders] == CLASSES[family]
    assert [e.max_length for e in encoders] == LENGTHS[family]
    assert all(not p.requires_grad for e in encoders for p in e.model.parameters())
    assert all(e.identity.startswith("local:") and "+tok:local:" in e.identity for e in encoders)


@pytest.mark.parametrize(
    ("class_name", "family"),
    [
        ("StableDiffusionImg2ImgPipeline", "sd"),
        ("StableDiffusionXLImg2ImgPipeline", "sdxl"),
        ("FluxKontextPipeline", "flux"),
        ("StableDiffusion3Img2ImgPipeline", "sd3"),
        ("PixArtAlphaPipeline", "generic"),
    ],
)
def test_detect_family_by_class_name(tmp_path, class_name, family):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    assert detect_family(tmp_path) == family


def test_folder_without_model_index_is_generic(tmp_path):
    assert detect_family(tmp_path) == "generic"


def test_load_vae_from_its_own_folder_and_in_bf16(tiny_pipelines):
    vae = load_vae(tiny_pipelines["sdxl"] / "vae", dtype="bf16")
    assert vae.dtype == torch.bfloat16
    assert load_vae(tiny_pipelines["sdxl"] / "vae", subfolder=None).config.latent_channels == 4


def test_generic_loads_every_text_encoder_by_its_index_class(tiny_pipelines):
    encoders = load_text_encoders(tiny_pipelines["sdxl"], "generic")
    assert [(e.name, e.kind, type(e.model).__name__) for e in encoders] == [
        ("text_encoder", "auto", "CLIPTextModel"),
        ("text_encoder_2", "auto", "CLIPTextModelWithProjection"),
    ]
    single = load_text_encoders(tiny_pipelines["flux"] / "text_encoder_2", "generic")
    assert len(single) == 1 and single[0].name is None


def test_generic_t5_loads_encoder_only(tiny_pipelines, tmp_path):
    folder = tmp_path / "t5"
    shutil.copytree(tiny_pipelines["flux"] / "text_encoder_2", folder)
    for item in (tiny_pipelines["flux"] / "tokenizer_2").iterdir():
        shutil.copy(item, folder / item.name)
    (encoder,) = load_text_encoders(folder, "generic")
    assert type(encoder.model).__name__ == "T5EncoderModel"


def test_missing_path_names_the_setting(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelNotFound) as info:
        load_vae(missing)
    assert str(info.value) == (
        f"HF_ASSETS_MODEL={str(missing)!r}: no such folder and no cached hub repo; "
        "set HF_ASSETS_MODEL to a diffusers pipeline folder or repo id"
    )
    with pytest.raises(ModelNotFound, match="^vae_model='someone/not-cached': no such folder and no cached hub repo"):
        load_text_encoders("someone/not-cached", "sdxl", setting="vae_model")
    with pytest.raises(ModelNotFound, match="no such folder"):
        detect_family("someone/not-cached")
    with pytest.raises(ModelNotFound, match="no such folder"):
        model_identity(missing, "vae")


def test_file_instead_of_folder_and_missing_component(tiny_pipelines, tmp_path):
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFound, match="is a file, not a folder"):
        load_vae(tmp_path / "file.bin")
    with pytest.raises(ModelNotFound, match=r"no 'vae' component in .* \(found: \['text_encoder'\]\)"):
        shutil.copytree(tiny_pipelines["sd"] / "text_encoder", tmp_path / "p" / "text_encoder")
        load_vae(tmp_path / "p")
    needs = r"the flux recipe needs \['tokenizer', 'text_encoder_2', 'tokenizer_2'\], missing in"
    with pytest.raises(ModelNotFound, match=needs):
        load_text_encoders(tmp_path / "p", "flux")


def test_model_identity_is_stable_and_tracks_changes(tiny_pipelines, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_pipelines["sd"], folder)
    first = model_identity(folder, "vae")
    assert first == model_identity(folder, "vae") and first.startswith("local:")
    assert first != model_identity(folder, "text_encoder")
    with pytest.raises(ModelNotFound, match="no 'unet' folder"):
        model_identity(folder, "unet")
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = model_identity(folder, "vae")
    assert touched != first
    config = json.loads((folder / "vae" / "config.json").read_text())
    config["scaling_factor"] = 0.5
    (folder / "vae" / "config.json").write_text(json.dumps(config))
    assert model_identity(folder, "vae") not in (first, touched)


COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty local hub cache that huggingface_hub reads; returns a function that stores a snapshot in it."""
    import huggingface_hub.constants as constants

    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))

    def store(repo_id: str, files: dict, commit: str = COMMIT):
        """The hub cache layout: blobs by hash, snapshot files as relative symlinks to them, refs/main."""
        repo = hub / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / commit
        for name, source in files.items():
            data = source.read_bytes() if isinstance(source, os.PathLike) else source
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = snapshot / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                link.unlink()
            link.symlink_to(os.path.relpath(blob, link.parent))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        return snapshot

    return store


def pipeline_files(folder, names=("vae", "text_encoder", "tokenizer")) -> dict:
    """Every file of the named components of a tiny pipeline, and its model_index.json, keyed as in the repo."""
    files = {"model_index.json": folder / "model_index.json"}
    for name in names:
        for path in sorted((folder / name).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(folder))] = path
    return files


def test_model_identity_of_cached_hub_repo(tiny_pipelines, hub_cache):
    hub_cache("org/tiny", pipeline_files(tiny_pipelines["sd"]))
    assert model_identity("org/tiny", "vae") == f"hub:org/tiny@{COMMIT}/vae"
    assert load_vae("org/tiny").config.latent_channels == 4


def test_cached_snapshot_without_weights_fails_offline_naming_the_incomplete_folders(tiny_pipelines, hub_cache):
    files = pipeline_files(tiny_pipelines["sdxl"], ("vae", "text_encoder", "tokenizer", "text_encoder_2"))
    # An interrupted download: configs and the first encoder's weights, none for the VAE or the second encoder.
    partial = {k: v for k, v in files.items() if not k.startswith(("vae/diffusion", "text_encoder_2/model"))}
    snapshot = hub_cache("org/partial", partial)
    with pytest.raises(ModelNotFound) as info:
        resolve_root("org/partial")
    message = str(info.value)
    assert message.startswith("HF_ASSETS_MODEL='org/partial': the cached snapshot")
    assert str(snapshot) in message and "incomplete" in message and "['text_encoder_2', 'vae']" in message
    assert "HF_HUB_OFFLINE" in message


def test_snapshot_whose_weight_blob_is_gone_is_incomplete(tiny_pipelines, hub_cache):
    snapshot = hub_cache("org/tiny", pipeline_files(tiny_pipelines["sd"]))
    os.unlink(os.path.realpath(snapshot / "vae" / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(ModelNotFound, match=r"incomplete \(no weights in \['vae'\]"):
        model_identity("org/tiny", "vae")


def test_sharded_checkpoint_missing_a_shard_is_incomplete(tiny_pipelines, hub_cache):
    files = pipeline_files(tiny_pipelines["sd"])
    del files["text_encoder/model.safetensors"]
    weights = (tiny_pipelines["sd"] / "text_encoder" / "model.safetensors").read_bytes()
    index = {
        "metadata": {},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"},
    }
    files["text_encoder/model.safetensors.index.json"] = json.dumps(index).encode()
    files["text_encoder/model-00001-of-00002.safetensors"] = weights
    hub_cache("org/sharded", files)
    with pytest.raises(ModelNotFound, match=r"no weights in \['text_encoder'\]"):
        resolve_root("org/sharded")
    files["text_encoder/model-00002-of-00002.safetensors"] = weights + b" "
    hub_cache("org/sharded-complete", files)
    assert resolve_root("org/sharded-complete").commit == COMMIT


def test_cached_vae_repo_needs_weights_at_its_root(tiny_pipelines, hub_cache):
    vae = tiny_pipelines["sdxl"] / "vae"
    # What the old patterns left behind for a VAE repo: only config.json.
    hub_cache("madebyollin/sdxl-vae-fp16-fix", {"config.json": vae / "config.json", "README.md": b"# fix"})
    with pytest.raises(
        ModelNotFound,
        match=r"^HF_ASSETS_VAE='madebyollin/sdxl-vae-fp16-fix': .* incomplete "
        r"\(no weights in \['\.'\]",
    ):
        resolve_root("madebyollin/sdxl-vae-fp16-fix", "HF_ASSETS_VAE")
    hub_cache(
        "org/vae",
        {
            "config.json": vae / "config.json",
            "diffusion_pytorch_model.safetensors": vae / "diffusion_pytorch_model.safetensors",
        },
    )
    assert resolve_root("org/vae", "HF_ASSETS_VAE").repo_id == "org/vae"
    assert load_vae("org/vae", None, setting="HF_ASSETS_VAE").config.scaling_factor == pytest.approx(0.13025)


@pytest.fixture
def online_hub(hub_cache, monkeypatch):
    """A reachable hub serving the repos put in the returned dict: a download stores in the local cache the
    files that its allow/ignore patterns select, as snapshot_download does; each download's patterns are logged."""
    import huggingface_hub

    repos, downloads = {}, []
    real = huggingface_hub.snapshot_download

    def snapshot_download(repo_id, revision=None, local_files_only=False, allow_patterns=None, ignore_patterns=None):
        if local_files_only:
            return real(repo_id, revision=revision, local_files_only=True)
        downloads.append((repo_id, allow_patterns, ignore_patterns))
        files = repos[repo_id]
        chosen = set(filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns))
        return str(hub_cache(repo_id, {k: v for k, v in files.items() if k in chosen}))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    return repos, downloads


def test_incomplete_snapshot_is_downloaded_again_with_the_encoder_patterns_when_online(
    tiny_pipelines, hub_cache, online_hub
):
    repos, downloads = online_hub
    repos["org/tiny"] = {**pipeline_files(tiny_pipelines["sd"]), "unet/diffusion_pytorch_model.safetensors": b"x"}
    hub_cache("org/tiny", {k: v for k, v in repos["org/tiny"].items() if not k.startswith(("vae/diff", "unet"))})
    snapshot = resolve_root("org/tiny").path
    assert downloads == [("org/tiny", *download_patterns("HF_ASSETS_MODEL"))]
    assert (snapshot / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    assert not (snapshot / "unet").exists()
    downloads.clear()
    assert resolve_root("org/tiny").path == snapshot and downloads == []  # complete now: no second download


def test_vae_repo_downloads_completely_under_the_vae_setting_and_is_refused_as_a_pipeline(tiny_pipelines, online_hub):
    repos, downloads = online_hub
    vae = tiny_pipelines["sdxl"] / "vae"
    repos["org/sdxl-vae"] = {
        "config.json": vae / "config.json",
        "diffusion_pytorch_model.safetensors": vae / "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.bin": b"pickled weights",
        "README.md": b"# a VAE",
    }
    with pytest.raises(ModelNotFound, match=r"the downloaded snapshot .* has no weights in \['\.'\].*HF_ASSETS_VAE"):
        resolve_root("org/sdxl-vae", "HF_ASSETS_MODEL")
    root = resolve_root("org/sdxl-vae", "HF_ASSETS_VAE").path
    assert sorted(p.name for p in root.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    assert load_vae("org/sdxl-vae", None, setting="HF_ASSETS_VAE").config.scaling_factor == pytest.approx(0.13025)


# Realistic repo listings: what snapshot_download's patterns fetch from them.
SDXL_REPO = [
    ".gitattributes",
    "01.png",
    "LICENSE.md",
    "README.md",
    "comparison.png",
    "model_index.json",
    "pipeline.png",
    "sd_xl_base_1.0.safetensors",
    "sd_xl_base_1.0_0.9vae.safetensors",
    "sd_xl_offset_example-lora_1.0.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/flax_model.msgpack",
    "text_encoder/model.fp16.safetensors",
    "text_encoder/model.onnx",
    "text_encoder/model.safetensors",
    "text_encoder/openvino_model.bin",
    "text_encoder/openvino_model.xml",
    "text_encoder_2/config.json",
    "text_encoder_2/flax_model.msgpack",
    "text_encoder_2/model.fp16.safetensors",
    "text_encoder_2/model.onnx",
    "text_encoder_2/model.onnx_data",
    "text_encoder_2/model.safetensors",
    "text_encoder_2/openvino_model.bin",
    "text_encoder_2/openvino_model.xml",
    "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "tokenizer_2/merges.txt",
    "tokenizer_2/special_tokens_map.json",
    "tokenizer_2/tokenizer_config.json",
    "tokenizer_2/vocab.json",
    "unet/config.json",
    "unet/diffusion_flax_model.msgpack",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.safetensors",
    "unet/model.onnx",
    "unet/model.onnx_data",
    "unet/openvino_model.bin",
    "unet/openvino_model.xml",
    "vae/config.json",
    "vae/diffusion_flax_model.msgpack",
    "vae/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "vae_1_0/config.json",
    "vae_1_0/diffusion_pytorch_model.fp16.safetensors",
    "vae_1_0/diffusion_pytorch_model.safetensors",
    "vae_decoder/config.json",
    "vae_decoder/model.onnx",
    "vae_decoder/openvino_model.bin",
    "vae_decoder/openvino_model.xml",
    "vae_encoder/config.json",
    "vae_encoder/model.onnx",
    "vae_encoder/openvino_model.bin",
    "vae_encoder/openvino_model.xml",
]
FP16_FIX_VAE_REPO = [
    ".gitattributes",
    "README.md",
    "config.json",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.safetensors",
    "images/activation-magnitudes.jpg",
    "sdxl.vae.safetensors",
    "sdxl_vae.safetensors",
]


def fetched(setting: str, repo: list[str]) -> set[str]:
    allow, ignore = download_patterns(setting)
    return set(filter_repo_objects(repo, allow_patterns=allow, ignore_patterns=ignore))


def test_pipeline_download_fetches_the_encoders_safetensors_and_nothing_of_the_denoiser():
    got = fetched("HF_ASSETS_MODEL", SDXL_REPO)
    needed = {
        "model_index.json",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "text_encoder_2/config.json",
        "text_encoder_2/model.safetensors",
        *(f for f in SDXL_REPO if f.startswith("tokenizer")),
    }
    assert needed <= got
    assert not {f for f in got if f.split("/")[0] in ("unet", "scheduler", "vae_1_0", "vae_decoder", "vae_encoder")}
    assert not {f for f in got if "/" not in f} - {"model_index.json"}  # no single-file checkpoint, no README
    assert not {f for f in got if f.endswith((".bin", ".msgpack", ".onnx", ".onnx_data", ".h5", ".ckpt"))}
    # The same patterns are used for any other setting that names a pipeline.
    assert fetched("vae_model", SDXL_REPO) == got


def test_vae_repo_download_fetches_its_config_and_safetensors_weights_at_the_root():
    got = fetched("HF_ASSETS_VAE", FP16_FIX_VAE_REPO)
    assert {"config.json", "diffusion_pytorch_model.safetensors"} <= got
    assert got <= {"config.json", "diffusion_pytorch_model.safetensors", "sdxl.vae.safetensors", "sdxl_vae.safetensors"}
    # The pipeline patterns would fetch nothing usable from it (the bug: an incomplete snapshot that stuck).
    assert fetched("HF_ASSETS_MODEL", FP16_FIX_VAE_REPO) == set()


def test_download_patterns_are_fresh_lists_for_each_call():
    allow, ignore = download_patterns("HF_ASSETS_MODEL")
    allow.append("unet/*")
    ignore.clear()
    assert "unet/*" not in download_patterns("HF_ASSETS_MODEL")[0] and download_patterns("HF_ASSETS_MODEL")[1]
    assert env.VAE == "HF_ASSETS_VAE"


def test_as_dtype():
    assert as_dtype(None) is torch.float32
    assert as_dtype("bf16") is torch.bfloat16 and as_dtype("torch.float16") is torch.float16
    assert as_dtype(torch.float64) is torch.float64
    with pytest.raises(ValueError, match="dtype='int8x'"):
        as_dtype("int8x")


def test_importing_the_encode_package_loads_neither_diffusers_nor_transformers():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import hf_assets.encode.images, hf_assets.encode.model_loading, hf_assets.encode.prefetch\n"
        "import hf_assets.encode.text, hf_assets.testing.tiny_pipelines, hf_assets.encode.vae\n"
        "print(sorted(m for m in ('diffusers', 'transformers', 'dagster') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
