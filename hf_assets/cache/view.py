"""The type of every read-only view of a committed encoder cache, importable without torch."""

from collections.abc import Mapping
from pathlib import Path


class CacheView(Mapping):
    """A lazy mapping over the committed cache in `directory` (latents, text embeddings). The asset that returns one
    has written and committed its files itself: an IO manager stores nothing for it and loads it by reopening."""

    directory: Path
