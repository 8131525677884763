"""Caption embeddings per model family, computed as each diffusers pipeline's encode_prompt does."""

import torch
import torch.nn.functional as F

RECIPE_VERSION = 1
LONG_KINDS = ("t5", "umt5", "auto")  # encoders whose sequence length the caller may set


def encode_captions(encoders, captions: list[str], family: str, max_length: int | None = None) -> list[dict]:
    """One dict of CPU tensors per caption; one forward per encoder for the whole list."""
    # Keys: sd -> prompt_embeds (77, D); sdxl -> prompt_embeds (77, D1+D2), pooled_prompt_embeds (P2);
    # sd3 -> prompt_embeds (77+L, Dt5), pooled_prompt_embeds (P1+P2), attention_mask (77+L, CLIP part all 1);
    # flux -> prompt_embeds (L, Dt5), pooled_prompt_embeds (D1), attention_mask (L);
    # wan -> prompt_embeds (L, D) of the cleaned caption, zero past its tokens, attention_mask (L);
    # ltx -> prompt_embeds (L, D), attention_mask (L); cogvideox -> prompt_embeds (L, D);
    # generic -> last_hidden_state, pooler_output (when the model has one), attention_mask, suffixed _2, _3...
    # for later encoders. max_length sets L for T5 and generic encoders; CLIP keeps its tokenizer's 77.
    # attention_mask is stored for trainers that mask padding; like diffusers, T5 itself runs without it.
    captions = list(captions)
    if not captions:
        return []
    recipe = {
        "sd": _sd,
        "sdxl": _sdxl,
        "sd3": _sd3,
        "flux": _flux,
        "wan": _wan,
        "ltx": _ltx,
        "cogvideox": _cogvideox,
    }.get(family, _generic)
    batch = recipe(list(encoders), captions, max_length)
    batch = {key: value.detach().cpu() for key, value in batch.items()}
    return [{key: value[i].clone() for key, value in batch.items()} for i in range(len(captions))]


def _length(enc, max_length: int | None) -> int:
    """The padded sequence length this encoder runs at."""
    return int(max_length) if max_length and enc.kind in LONG_KINDS else int(enc.max_length)


def _run(enc, captions: list[str], max_length: int | None, hidden: bool = False, mask: bool = False):
    """Tokenize to a fixed length and run the encoder once; returns (outputs, attention_mask)."""
    tokens = enc.tokenizer(
        captions, padding="max_length", max_length=_length(enc, max_length), truncation=True, return_tensors="pt"
    )
    device = next(enc.model.parameters()).device
    kwargs = {"output_hidden_states": True} if hidden else {}
    if mask:
        kwargs["attention_mask"] = tokens.attention_mask.to(device)
    with torch.inference_mode():
        out = enc.model(input_ids=tokens.input_ids.to(device), **kwargs)
    return out, tokens.attention_mask


def _expect(encoders, kinds: tuple[str, ...], family: str):
    """Check the encoders match the recipe (same count and kinds)."""
    got = tuple(e.kind for e in encoders)
    if got != kinds:
        raise ValueError(f"family {family!r} expects text encoders {kinds}, got {got}")


def _sd(encoders, captions, max_length):
    """SD 1.x/2.x: CLIP last hidden state (mask only when the config asks for it)."""
    _expect(encoders, ("clip",), "sd")
    enc = encoders[0]
    out, _ = _run(enc, captions, max_length, mask=bool(getattr(enc.model.config, "use_attention_mask", False)))
    return {"prompt_embeds": out[0]}


def _sdxl(encoders, captions, max_length):
    """SDXL: penultimate hidden states of both CLIPs concatenated on features; pooled from the projection CLIP."""
    kinds = tuple(e.kind for e in encoders)
    if kinds not in (("clip", "clip_projection"), ("clip_projection",)):
        raise ValueError(f"family 'sdxl' expects text encoders ('clip', 'clip_projection'), got {kinds}")
    hidden, pooled = [], None
    for enc in encoders:
        out, _ = _run(enc, captions, max_length, hidden=True)
        if pooled is None and out[0].ndim == 2:
            pooled = out[0]
        hidden.append(out.hidden_states[-2])
    return {"prompt_embeds": torch.cat(hidden, dim=-1), "pooled_prompt_embeds": pooled}


def _sd3(encoders, captions, max_length):
    """SD3: CLIP-L and CLIP-G penultimate, padded to T5 width, then T5 last hidden state along the sequence."""
    _expect(encoders, ("clip_projection", "clip_projection", "t5"), "sd3")
    clip_hidden, pooled = [], []
    for enc in encoders[:2]:
        out, _ = _run(enc, captions, max_length, hidden=True)
        clip_hidden.append(out.hidden_states[-2])
        pooled.append(out[0])
    t5_out, t5_mask = _run(encoders[2], captions, max_length)
    t5 = t5_out[0]
    clip = torch.cat(clip_hidden, dim=-1)
    if clip.shape[-1] > t5.shape[-1]:
        raise ValueError(f"sd3: CLIP width {clip.shape[-1]} exceeds T5 width {t5.shape[-1]}")
    clip = F.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
    clip_mask = torch.ones(clip.shape[:2], dtype=t5_mask.dtype)
    return {
        "prompt_embeds": torch.cat([clip, t5.to(clip.dtype)], dim=-2),
        "pooled_prompt_embeds": torch.cat(pooled, dim=-1),
        "attention_mask": torch.cat([clip_mask, t5_mask], dim=-1),
    }


def _flux(encoders, captions, max_length):
    """Flux: CLIP pooler output as pooled_prompt_embeds, T5 last hidden state as prompt_embeds."""
    _expect(encoders, ("clip", "t5"), "flux")
    clip_out, _ = _run(encoders[0], captions, max_length)
    t5_out, t5_mask = _run(encoders[1], captions, max_length)
    return {"prompt_embeds": t5_out[0], "pooled_prompt_embeds": clip_out.pooler_output, "attention_mask": t5_mask}


def _wan(encoders, captions, max_length):
    """Wan: UMT5 run with the attention mask on the cleaned caption; positions past its tokens set to zero."""
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean  # the pipeline's own text cleaning (ftfy, html)

    if len(encoders) != 1 or encoders[0].kind not in ("umt5", "t5"):
        raise ValueError(f"family 'wan' expects one UMT5 text encoder, got {tuple(e.kind for e in encoders)}")
    out, mask = _run(encoders[0], [prompt_clean(c) for c in captions], max_length, mask=True)
    hidden = out.last_hidden_state
    return {"prompt_embeds": hidden * mask.to(hidden.device, hidden.dtype).unsqueeze(-1), "attention_mask": mask}


def _ltx(encoders, captions, max_length):
    """LTX-Video: T5 last hidden state (run without the mask, as the pipeline) and the attention mask."""
    _expect(encoders, ("t5",), "ltx")
    out, mask = _run(encoders[0], captions, max_length)
    return {"prompt_embeds": out[0], "attention_mask": mask}


def _cogvideox(encoders, captions, max_length):
    """CogVideoX: T5 last hidden state, run without the mask, as the pipeline."""
    _expect(encoders, ("t5",), "cogvideox")
    out, _ = _run(encoders[0], captions, max_length)
    return {"prompt_embeds": out[0]}


def _generic(encoders, captions, max_length):
    """Any encoder: last hidden state, pooler output when present, and the attention mask."""
    result = {}
    for i, enc in enumerate(encoders):
        model = enc.model.get_encoder() if getattr(enc.model.config, "is_encoder_decoder", False) else enc.model
        tokens = enc.tokenizer(
            captions, padding="max_length", max_length=_length(enc, max_length), truncation=True, return_tensors="pt"
        )
        device = next(model.parameters()).device
        with torch.inference_mode():
            out = model(input_ids=tokens.input_ids.to(device), attention_mask=tokens.attention_mask.to(device))
        suffix = f"_{i + 1}" if i else ""
        last = getattr(out, "last_hidden_state", None)
        result["last_hidden_state" + suffix] = last if last is not None else out[0]
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            result["pooler_output" + suffix] = pooled
        result["attention_mask" + suffix] = tokens.attention_mask
    return result
