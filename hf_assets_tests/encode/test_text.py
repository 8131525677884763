"""Caption recipes: shapes per family, equality with diffusers' encode_prompt, batching and cache identity."""

import inspect

import pytest
import torch
from safetensors.torch import save_file

from hf_assets.encode.text import encode_captions

CAPTIONS = ["a photo of the cat", "", "The Dog!! on a red mat, " * 40]
# family -> {key: shape}; widths from the tiny configs: CLIP-L 32, CLIP-G 48 (projection 40), T5 96 (sd3) / 64 (flux)
SHAPES = {
    "sd": {"prompt_embeds": (77, 32)},
    "sdxl": {"prompt_embeds": (77, 32 + 48), "pooled_prompt_embeds": (40,)},
    "sd3": {"prompt_embeds": (77 + 256, 96), "pooled_prompt_embeds": (24 + 40,), "attention_mask": (77 + 256,)},
    "flux": {"prompt_embeds": (512, 64), "pooled_prompt_embeds": (32,), "attention_mask": (512,)},
}
PIPELINES = {
    "sd": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "flux": "FluxPipeline",
}


@pytest.mark.parametrize("family", sorted(SHAPES))
def test_shapes_and_values(loaded, family):
    _, encoders = loaded(family)
    out = encode_captions(encoders, CAPTIONS, family)
    assert len(out) == len(CAPTIONS)
    for item in out:
        assert {k: tuple(v.shape) for k, v in item.items()} == SHAPES[family]
        assert all(v.device.type == "cpu" and torch.isfinite(v.float()).all() for v in item.values())
    assert not torch.equal(out[0]["prompt_embeds"], out[1]["prompt_embeds"])
    if "attention_mask" in SHAPES[family]:
        mask = out[0]["attention_mask"]
        assert mask.dtype == torch.int64 and 0 < int(mask.sum()) < mask.numel()
        assert int(out[2]["attention_mask"].sum()) == mask.numel()  # the long caption fills every position


def pipeline_reference(family, encoders, captions):
    """prompt_embeds and pooled embeddings from the real diffusers pipeline's encode_prompt."""
    import diffusers

    cls = getattr(diffusers, PIPELINES[family])
    parts = {"vae": None, "unet": None, "transformer": None, "scheduler": None}
    for enc in encoders:
        parts[enc.name] = enc.model
        parts[enc.name.replace("text_encoder", "tokenizer")] = enc.tokenizer
    params = inspect.signature(cls.__init__).parameters
    pipe = cls(
        **{k: v for k, v in parts.items() if k in params},
        **(
            {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
            if family == "sd"
            else {}
        ),
    )
    if family == "sd":
        return pipe.encode_prompt(captions, "cpu", 1, False)[0], None
    if family == "sdxl":
        result = pipe.encode_prompt(captions, device="cpu", do_classifier_free_guidance=False)
        return result[0], result[2]
    if family == "sd3":
        result = pipe.encode_prompt(captions, None, None, device="cpu", do_classifier_free_guidance=False)
        return result[0], result[2]
    result = pipe.encode_prompt(captions, None, device="cpu")
    return result[0], result[1]


@pytest.mark.parametrize("family", sorted(SHAPES))
def test_matches_diffusers_encode_prompt(loaded, family):
    _, encoders = loaded(family)
    ours = encode_captions(encoders, CAPTIONS, family)
    embeds, pooled = pipeline_reference(family, encoders, CAPTIONS)
    for i, item in enumerate(ours):
        torch.testing.assert_close(item["prompt_embeds"], embeds[i], rtol=0, atol=0)
        if pooled is not None:
            torch.testing.assert_close(item["pooled_prompt_embeds"], pooled[i], rtol=0, atol=0)


@pytest.mark.parametrize("family", ["sdxl", "flux"])
def test_one_forward_per_encoder_and_batch_equals_single(loaded, family):
    _, encoders = loaded(family)
    calls = []
    hooks = [
        e.model.register_forward_hook(lambda m, a, k, o, n=e.name: calls.append(n), with_kwargs=True) for e in encoders
    ]
    try:
        batch = encode_captions(encoders, CAPTIONS, family)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == [e.name for e in encoders]
    for caption, item in zip(CAPTIONS, batch):
        (single,) = encode_captions(encoders, [caption], family)
        for key in item:
            torch.testing.assert_close(item[key], single[key], rtol=1e-5, atol=1e-5)


def test_outputs_are_independent_tensors_that_save(loaded, tmp_path):
    _, encoders = loaded("sd3")
    out = encode_captions(encoders, CAPTIONS, "sd3")
    tensors = {f"{i}.{k}": v for i, item in enumerate(out) for k, v in item.items()}
    save_file(tensors, tmp_path / "captions.safetensors")  # fails if tensors share storage
    assert out[0]["prompt_embeds"].untyped_storage().nbytes() == out[0]["prompt_embeds"].numel() * 4


def test_max_length_sets_t5_length_only(loaded):
    _, encoders = loaded("flux")
    (item,) = encode_captions(encoders, ["a cat"], "flux", max_length=128)
    assert item["prompt_embeds"].shape == (128, 64) and item["pooled_prompt_embeds"].shape == (32,)
    (sd3,) = encode_captions(loaded("sd3")[1], ["a cat"], "sd3", max_length=64)
    assert sd3["prompt_embeds"].shape == (77 + 64, 96)


def test_generic_recipe(tiny_pipelines):
    from hf_assets.encode.model_loading import load_text_encoders

    encoders = load_text_encoders(tiny_pipelines["sd"], "generic")
    (item,) = encode_captions(encoders, ["a photo of the cat"], "generic", max_length=16)
    assert {k: tuple(v.shape) for k, v in item.items()} == {
        "last_hidden_state": (16, 32),
        "pooler_output": (32,),
        "attention_mask": (16,),
    }
    assert item["attention_mask"].tolist()[:7] == [1] * 7 and item["attention_mask"][-1] == 0


def test_empty_list_and_wrong_encoders(loaded):
    _, encoders = loaded("sdxl")
    assert encode_captions(encoders, [], "sdxl") == []
    with pytest.raises(ValueError, match="family 'flux' expects text encoders"):
        encode_captions(encoders, ["a"], "flux")
