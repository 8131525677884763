"""A `type: local` backend: a folder of images whose captions come from sidecars, file names or one prompt."""

from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from hf_assets.cache.hashing import fingerprint_of
from hf_assets.config.schema import BackendConfig, CaptionConfig
from hf_assets.data.caption_table import table_captions
from hf_assets.data.sidecars import Caption, read_sidecar
from hf_assets.data.split import IMAGE_EXTENSIONS, IMAGE_STRUCT, DatasetNotFound, RawSplit

# The listing's own columns: rows are named by their relative path and captioned by the `caption` column (a list of
# variants); `caption_problem` says why a row has no caption (it becomes the detail of its drop reason).
NAME_COLUMN = "filename"
DETAIL_COLUMN = "caption_problem"
LISTING_CAPTIONS = CaptionConfig(columns=("caption",), strategy="huggingface")
CAPTION_LISTS = pa.list_(pa.string())


def listing_captions(backend: BackendConfig) -> CaptionConfig:
    """How a listing's `caption` column is read: the backend's instance prompt settings applied to it."""
    c = backend.captions
    return replace(
        LISTING_CAPTIONS,
        instance_prompt=c.instance_prompt,
        prepend_instance_prompt=c.prepend_instance_prompt and not c.uses_instance_prompt_only,
    )


def caption_variants(caption: Caption, backend: BackendConfig) -> list[str] | None:
    """A row's variants: the instance prompt(s), or each non-empty line of its caption (SimpleTuner's textfile; the
    whole text with disable_multiline_split); None when it has none."""
    if backend.captions.uses_instance_prompt_only:
        return list(backend.captions.instance_prompts)
    if caption.text is None:
        return None
    return (
        [line for line in caption.text.splitlines() if line.strip()] if backend.captions.split_lines else [caption.text]
    )


def scan_image_folder(backend: BackendConfig) -> RawSplit:
    """List the images under instance_data_dir (sorted, recursive) with their captions; no image is opened."""
    root = backend.instance_data_dir
    if root is None or not root.is_dir():
        raise DatasetNotFound(
            f"backend '{backend.id}': instance_data_dir '{root}' is not a folder; "
            "set it to the folder of images (relative paths resolve against the config file)"
        )
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    names = [p.relative_to(root).as_posix() for p in files]
    if backend.captions.table is not None and not backend.captions.uses_instance_prompt_only:
        captions, problems = table_captions(names, backend.captions.table, _read_local)
        read = [Caption(None, problem) for problem in problems]
    else:
        read = [caption_for(p, backend) for p in files]
        captions = [caption_variants(caption, backend) for caption in read]
    stats = [p.stat() for p in files]
    table = pa.table(
        {
            NAME_COLUMN: pa.array(names, pa.string()),
            "image": pa.array([{"bytes": None, "path": str(p)} for p in files], IMAGE_STRUCT),
            "caption": pa.array(captions, CAPTION_LISTS),
            DETAIL_COLUMN: pa.array([caption.problem for caption in read], pa.string()),
        }
    )
    parts = [f"{n}|{s.st_size}|{s.st_mtime_ns}|{c}" for n, s, c in zip(names, stats, captions)]
    return RawSplit.from_table(
        backend.id,
        table,
        str(root),
        fingerprint_of(parts),
        kind="image_folder",
        image_column="image",
        base_dir=root,
        name_column=NAME_COLUMN,
        captions=listing_captions(backend),
        detail_column=DETAIL_COLUMN,
    )


def _read_local(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DatasetNotFound(f"the caption table {path} cannot be read ({type(exc).__name__}: {exc})") from None


def caption_for(image_path: Path, backend: BackendConfig) -> Caption:
    """The caption a local image gets under the backend's caption_strategy (None text: no caption, and why)."""
    strategy = backend.captions.strategy
    if backend.captions.uses_instance_prompt_only:
        return Caption(backend.captions.instance_prompts[0])  # every prompt becomes a variant (caption_variants)
    if strategy == "filename":
        return Caption(image_path.stem.replace("_", " "))
    sidecar = image_path.with_suffix(".txt")
    if not sidecar.is_file():
        return Caption(None)
    return read_sidecar(sidecar, backend.captions.encoding)
