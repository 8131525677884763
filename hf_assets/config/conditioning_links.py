"""Resolve the conditioning datasets of a config when it loads: each generated dataset becomes a backend (a partition)
of its own, each given one finds its source, and each source learns its partners.

SimpleTuner's rules:
- A `conditioning` object on an image backend generates a dataset with id `{source id}_conditioning_{type}`. It is
  a copy of its source's config (the same images, buckets and crops), with `dataset_type: "conditioning"`, the
  object's `conditioning_type` (default `reference_strict`) and captions (absent: the source's; false: none; a
  string or a list: those). Its latents go to `<source cache_dir_vae>/<its id>` when the source sets cache_dir_vae.
- A `dataset_type: "conditioning"` backend pairs with the backend named by its `source_dataset_id`, else with the
  image backend whose `conditioning_data` lists it. Without its own caption keys it takes its source's captions.

Here a given dataset without `conditioning_type` is a ControlNet dataset (SimpleTuner's ControlNet guide sets none
and trains it as one). Every problem is filed with the others, naming the backend, the key and the fix.
"""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hf_assets.config.conditioning_generators import generated_id, parse_conditioning
from hf_assets.config.schema import BackendConfig

DEFAULT_GIVEN_TYPE = "controlnet"
CAPTION_KEYS = ("caption_strategy", "caption_column", "fallback_caption_column", "instance_prompt")


def link_conditioning(
    backends: list[BackendConfig],
    entry_keys: dict[str, set[str]],
    resolve: Callable[[str], Path],
    problem: Callable[[str, str], None],
) -> list[BackendConfig]:
    """The backends with generated datasets added and pairs resolved, each conditioning dataset right after its
    source. `entry_keys` gives the keys each entry set; `problem(backend id, text)` files a problem (the backend
    and its conditioning datasets are then left out)."""
    by_id = {b.id: b for b in backends}
    generated: dict[str, list[BackendConfig]] = {}
    for source in backends:
        if source.conditioning.generators:
            generated[source.id] = _generated(source, by_id, resolve, problem)
    given: dict[str, list[BackendConfig]] = {}
    for backend in backends:
        if backend.dataset_type == "conditioning":
            linked = _given(backend, backends, by_id, entry_keys.get(backend.id, set()), problem)
            if linked is not None:
                given.setdefault(linked.conditioning.source, []).append(linked)
    for source in backends:
        names = {b.id for b in generated.get(source.id, [])}
        names |= {b.id for b in backends if b.dataset_type == "conditioning"}  # unpaired ones have their own problem
        for name in source.conditioning.data:
            if name not in names:
                problem(
                    source.id,
                    f"backend '{source.id}': conditioning_data names '{name}', which is no conditioning dataset of "
                    f'this config; give that backend "dataset_type": "conditioning" or fix the id',
                )
    out: list[BackendConfig] = []
    for backend in backends:
        if backend.dataset_type == "conditioning":
            continue  # placed after its source below (or left out with a problem)
        partners = given.get(backend.id, []) + generated.get(backend.id, [])
        ids = tuple(p.id for p in partners)
        out.append(replace(backend, conditioning=replace(backend.conditioning, partners=ids)) if ids else backend)
        out += partners
    return out


def _generated(
    source: BackendConfig, by_id: dict, resolve: Callable[[str], Path], problem: Callable[[str, str], None]
) -> list[BackendConfig]:
    """The datasets `source`'s conditioning objects generate."""
    where = f"backend '{source.id}'"
    entries, problems = parse_conditioning(list(source.conditioning.generators), where)
    if source.dataset_type != "image":
        problems.append(
            f"{where}: key 'conditioning' generates from images, and this backend holds {source.dataset_type} "
            "samples; remove the conditioning list or give the conditioning images as a conditioning dataset"
        )
    for problem_text in problems:
        problem(source.id, problem_text)
    if problems:
        return []
    out = []
    for entry in entries:
        backend_id = generated_id(source.id, entry.name)
        if backend_id in by_id:
            problem(source.id, f"{where}: the generated id '{backend_id}' is taken by another backend; rename one")
            continue
        conditioning = replace(
            source.conditioning,
            generators=(),
            data=(),
            type=entry.conditioning_type,
            source_dataset_id=source.id,
            source=source.id,
            generator=entry.generator,
            captions="source" if entry.captions is None else entry.captions,
            output_dir=resolve(entry.instance_data_dir) if entry.instance_data_dir else None,
        )
        out.append(
            replace(
                source,
                id=backend_id,
                dataset_type="conditioning",
                latents_dir=source.latents_dir / backend_id if source.latents_dir else None,
                conditioning=conditioning,
                warnings=(),
            )
        )
    return out


def _given(
    backend: BackendConfig,
    backends: list[BackendConfig],
    by_id: dict,
    keys: set[str],
    problem: Callable[[str, str], None],
) -> BackendConfig | None:
    """A given conditioning dataset with its source resolved, or None (a problem is filed)."""
    where = f"backend '{backend.id}'"
    named = backend.conditioning.source_dataset_id
    claimed = [b.id for b in backends if backend.id in b.conditioning.data]
    if named is not None and named not in by_id:
        return problem(backend.id, f"{where}: source_dataset_id names '{named}', which is no backend of this config")
    if named is None and len(claimed) > 1:
        return problem(
            backend.id,
            f"{where}: the conditioning_data of {', '.join(claimed)} all list it; a conditioning dataset pairs with "
            "one source: set its source_dataset_id, or give each source its own conditioning dataset",
        )
    source = named or (claimed[0] if claimed else None)
    if source is None:
        return problem(
            backend.id,
            f"{where}: a conditioning dataset needs its source: set source_dataset_id, or list '{backend.id}' in "
            "the image backend's conditioning_data",
        )
    if by_id[source].dataset_type != "image":
        return problem(
            backend.id,
            f"{where}: its source '{source}' holds {by_id[source].dataset_type} samples; conditioning datasets "
            "pair with image backends",
        )
    others = [b for b in claimed if b != source]
    if others:
        return problem(
            backend.id,
            f"{where}: source_dataset_id is '{source}', but the conditioning_data of {', '.join(others)} lists it "
            "too; keep one",
        )
    conditioning = replace(
        backend.conditioning,
        source=source,
        type=backend.conditioning.type or DEFAULT_GIVEN_TYPE,
        captions="own" if keys & set(CAPTION_KEYS) else "source",
    )
    return replace(backend, conditioning=conditioning)
