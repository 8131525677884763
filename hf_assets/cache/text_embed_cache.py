"""The trainer's view of a text-embedding cache: file name -> one dict of tensors per caption variant."""

from pathlib import Path

from hf_assets.cache.reader import LazyTensorMapping


class TextEmbedCache(LazyTensorMapping):
    """Lazy `filename -> [ {tensor name: tensor} per caption variant ]`; `captions(filename)` gives the texts."""

    def __init__(self, directory: str | Path):
        super().__init__(directory, key_column="filename", group=True)

    def captions(self, filename: str) -> list[str]:
        """The caption texts of a sample, in variant order."""
        return [row["caption"] for row in self.rows(filename)]


def open_text_embeds(directory: str | Path) -> TextEmbedCache:
    """Open a committed text-embedding cache without reading any tensor."""
    return TextEmbedCache(directory)
