"""What every asset's spec carries beyond its function: owners, a link to its source, and a code version that means
the code and the settings that shape its result (not the run that made it)."""

import inspect
import warnings
from functools import cache
from pathlib import Path

import dagster as dg

from hf_assets import env
from hf_assets.automation.changes import config_digest
from hf_assets.cache.hashing import fingerprint_of
from hf_assets.config import DataloaderConfig

PACKAGE = Path(__file__).resolve().parents[1]
# The functional core each group of assets runs on: a change to any module of these changes the group's version.
CORE = {
    "metadata": ("env.py", "progress.py", "config", "data", "cache"),
    "encoders": ("env.py", "progress.py", "config", "data", "cache", "encode"),
}
CODE_REFERENCES = "dagster/code_references"


@cache
def source_digest(paths: tuple[str, ...]) -> str:
    """A digest of the Python sources under these paths (files or folders, relative to the package or absolute)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name) if Path(name).is_absolute() else PACKAGE / name
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    # Named relative to the checkout, so that two clones of the same code agree.
    named = [(f.relative_to(PACKAGE.parent) if f.is_relative_to(PACKAGE.parent) else f, f) for f in files]
    return fingerprint_of(f"{name}\n{f.read_text()}" for name, f in named if f.is_file())


def settings_digest(config: DataloaderConfig, encoder_settings: dict | None = None) -> str:
    """A digest of every backend's parsed settings (and, for the encoders, the encoders resource's settings as the
    environment gives them)."""
    parts = [f"{backend.id}={config_digest(backend)}" for backend in config.backends]
    parts += [f"{key}={value}" for key, value in sorted((encoder_settings or {}).items())]
    return fingerprint_of(parts)


def code_version(spec: dg.AssetSpec, config: DataloaderConfig, encoder_settings: dict) -> str:
    """The asset's own module and its core packages, and the settings that shape its result, as one short digest."""
    own = [ref.file_path for ref in getattr(spec.metadata.get(CODE_REFERENCES), "code_references", [])]
    group = spec.group_name if spec.group_name in CORE else "encoders"
    settings = settings_digest(config, encoder_settings if group == "encoders" else None)
    return fingerprint_of([source_digest(tuple(CORE[group]) + tuple(own)), settings])[:16]


def with_spec_attributes(
    assets: list[dg.AssetsDefinition], config: DataloaderConfig, encoder_settings: dict
) -> list[dg.AssetsDefinition]:
    """The assets with their source code references, owners (HF_ASSETS_OWNERS) and code version."""
    owners = list(env.owners())
    with warnings.catch_warnings():  # code references are a beta feature of dagster 1.13
        warnings.simplefilter("ignore", dg.BetaWarning)
        referenced = [_unwrapped_reference(a) for a in dg.with_source_code_references(assets)]
        return list(
            dg.map_asset_specs(
                lambda spec: spec.replace_attributes(
                    owners=owners, code_version=code_version(spec, config, encoder_settings)
                ),
                referenced,
            )
        )


def _unwrapped_reference(assets_def: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """dagster points an asset whose function is wrapped (`retry_only_transient`) at the wrapper's file with the
    function's line: point it at the function's own file (`inspect.unwrap` follows each `__wrapped__`)."""
    if not isinstance(assets_def.node_def, dg.OpDefinition):
        return assets_def  # a graph asset: dagster's reference to its composition function is right
    function = inspect.unwrap(assets_def.op)
    if function is assets_def.op or not inspect.isfunction(function):
        return assets_def
    reference = dg.LocalFileCodeReference(
        file_path=str(Path(inspect.getsourcefile(function)).resolve()),
        line_number=inspect.getsourcelines(function)[1],
    )
    references = dg.CodeReferencesMetadataValue(code_references=[reference])
    return assets_def.map_asset_specs(
        lambda spec: spec.replace_attributes(metadata={**spec.metadata, CODE_REFERENCES: references})
    )
