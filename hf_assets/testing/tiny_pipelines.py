"""Tiny diffusers-layout pipeline folders for tests, the demo and the benches: real classes, tiny configs, seeded
RANDOM weights (their latents and embeddings mean nothing). The real encoders are loaded by
hf_assets.encode.model_loading."""

import json
import string
from pathlib import Path

from hf_assets.encode.model_loading import ENCODERS, MODEL_CLASSES

FAMILY_CLASS = {
    "sd": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "flux": "FluxPipeline",
    "wan": "WanPipeline",
}
ALIASES = {"sd1": "sd", "sd15": "sd", "sd2": "sd"}

# family -> (latent_channels, scaling_factor, shift_factor), as in the real VAE configs
VAE_SETTINGS = {
    "sd": (4, 0.18215, None),
    "sdxl": (4, 0.13025, None),
    "sd3": (16, 1.5305, 0.0609),
    "flux": (16, 0.3611, 0.1159),
}

# family -> hidden width of each text encoder, in the order of encode.model_loading.ENCODERS (subfolders and kinds)
WIDTHS = {"sd": (32,), "sdxl": (32, 48), "sd3": (32, 48, 96), "flux": (32, 64), "wan": (32,)}
TOKENIZER_CLASS = {
    "clip": "CLIPTokenizer",
    "clip_projection": "CLIPTokenizer",
    "t5": "T5TokenizerFast",
    "umt5": "T5TokenizerFast",
}
VIDEO_VAE_CLASS = {"wan": "AutoencoderKLWan"}
# Wan's per-channel latent statistics, tiny (4 channels) but not trivial, so normalisation is visible in tests
WAN_LATENTS_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075]
WAN_LATENTS_STD = [2.8184, 1.4541, 2.3275, 2.6558]
CLIP_MERGES = ["t h", "th e</w>", "c a", "ca t</w>", "d o", "do g</w>", "o f</w>", "p h", "ph o", "pho t", "phot o</w>"]
T5_WORDS = ["a", "the", "of", "photo", "cat", "dog", "in", "on", "with", "and", "red", "blue"]


def build_tiny_pipeline(folder: Path, family: str = "sdxl", seed: int = 0) -> Path:
    """Write a tiny pipeline folder (model_index.json, vae, text encoders, tokenizers) and return it."""
    import diffusers
    import torch

    fam = ALIASES.get(family, family)
    if fam not in FAMILY_CLASS:
        raise ValueError(f"family={family!r}: expected one of {sorted(FAMILY_CLASS) + sorted(ALIASES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": FAMILY_CLASS[fam], "_diffusers_version": diffusers.__version__}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if fam in VIDEO_VAE_CLASS:
            _save_wan_vae(folder / "vae")
        else:
            _save_vae(folder / "vae", fam)
        index["vae"] = ["diffusers", VIDEO_VAE_CLASS.get(fam, "AutoencoderKL")]
        for i, ((enc_name, tok_name, kind, _), width) in enumerate(zip(ENCODERS[fam], WIDTHS[fam], strict=True)):
            torch.manual_seed(seed * 1000 + i + 1)
            clip_pad = "!" if enc_name == "text_encoder_2" else "<|endoftext|>"
            if kind in ("t5", "umt5"):
                tok = _save_t5_tokenizer(folder / tok_name)
                model = _t5_model(width, tok, umt5=kind == "umt5")
            else:
                tok = _save_clip_tokenizer(folder / tok_name, clip_pad)
                model = _clip_model(kind, width, tok)
            model.save_pretrained(folder / enc_name)
            index[enc_name] = ["transformers", MODEL_CLASSES[kind]]
            index[tok_name] = ["transformers", TOKENIZER_CLASS[kind]]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return folder


def build_tiny_dpt(folder: Path, seed: int = 0) -> Path:
    """Write a tiny DPTForDepthEstimation folder (config.json, model.safetensors, preprocessor_config.json): a
    four-layer ViT of width 32 on 8-pixel patches at 32x32, random weights."""
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation

    config = DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 16, 32],
        reassemble_factors=[4, 2, 1, 0.5],
        fusion_hidden_size=16,
        use_auxiliary_head=False,
    )
    folder = Path(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        DPTForDepthEstimation(config).eval().save_pretrained(folder)
    preprocessor = {  # transformers' DPTImageProcessor keys, as a hub DPT repo ships them
        "image_processor_type": "DPTImageProcessor",
        "do_resize": True,
        "size": {"height": 32, "width": 32},
        "keep_aspect_ratio": False,
        "ensure_multiple_of": 1,
        "resample": 3,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    return folder


def _save_vae(path: Path, family: str) -> None:
    """Save a four-level AutoencoderKL (downscale 8, as the real ones) with the family's channels and factors.

    The real downscale matters: the mid-block attention is quadratic in latent pixels.
    """
    from diffusers import AutoencoderKL

    channels, scale, shift = VAE_SETTINGS[family]
    flow = family in ("sd3", "flux")
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=channels,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=scale,
        shift_factor=shift,
        use_quant_conv=not flow,
        use_post_quant_conv=not flow,
    )
    vae.save_pretrained(path)


def _save_wan_vae(path: Path) -> None:
    """Save a tiny AutoencoderKLWan: 4 latent channels, spatial downscale 8 and temporal 4, as Wan 2.1's."""
    from diffusers import AutoencoderKLWan

    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        attn_scales=[],
        temperal_downsample=[False, True, True],
        latents_mean=WAN_LATENTS_MEAN,
        latents_std=WAN_LATENTS_STD,
        scale_factor_temporal=4,
        scale_factor_spatial=8,
    )
    vae.save_pretrained(path)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-printable-character table used by byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return dict(zip(bs, map(chr, cs)))


def _save_clip_tokenizer(path: Path, pad_token: str):
    """Write vocab.json + merges.txt (every byte, with and without </w>, a few merges) and save a CLIPTokenizer."""
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    for merge in CLIP_MERGES:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(CLIP_MERGES) + "\n")
    tok = CLIPTokenizer.from_pretrained(path, model_max_length=77, pad_token=pad_token)
    tok.save_pretrained(path)
    return tok


def _save_t5_tokenizer(path: Path):
    """Build a tokenizers-library Unigram model (T5 layout: <pad>, </s>, <unk>) and save a T5 fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + w, -3.0) for w in T5_WORDS]
    pieces += [(c, -6.0) for c in string.ascii_letters + string.digits + string.punctuation]
    pieces += [("\u2581" + c, -5.0) for c in string.ascii_lowercase if c != "a"]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.normalizer = normalizers.Replace(" {2,}", " ")
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")]
    )
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", 1)]
    )
    path.mkdir(parents=True, exist_ok=True)
    backend.save(str(path / "tokenizer.json"))
    tok = T5TokenizerFast(
        tokenizer_object=backend,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=0,
        model_max_length=512,
    )
    tok.save_pretrained(path)
    return tok


def _clip_model(kind: str, width: int, tok):
    """A two-layer CLIP text model (with a projection head for clip_projection)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=width,
        intermediate_size=2 * width,
        projection_dim=width - 8,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="quick_gelu" if width == 32 else "gelu",
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    cls = CLIPTextModelWithProjection if kind == "clip_projection" else CLIPTextModel
    return cls(config).eval()


def _t5_model(width: int, tok, umt5: bool = False):
    """A two-layer T5 v1.1-style encoder (gated GELU, untied embeddings); UMT5 (Wan's) when asked."""
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config = (UMT5Config if umt5 else T5Config)(
        vocab_size=len(tok),
        d_model=width,
        d_kv=width // 4,
        d_ff=2 * width,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        dropout_rate=0.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return (UMT5EncoderModel if umt5 else T5EncoderModel)(config).eval()
