"""Caption sidecars (`photo.txt` beside `photo.jpg`): decoded strictly, never silently altered."""

import codecs
from dataclasses import dataclass
from pathlib import Path

# A byte-order mark names its encoding; it is stripped, never kept in the caption.
BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class Caption:
    """A caption's text, or None with the reason it has none (a file that does not decode)."""

    text: str | None
    problem: str | None = None


def decode_caption(data: bytes, fallback_encoding: str | None = None, name: str = "sidecar") -> Caption:
    """The text of a caption file: by its BOM (stripped), else UTF-8, else `fallback_encoding`; all strict.

    Bytes that none of these decode give no text and a reason naming the file, the offending byte and the fix.
    """
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return Caption(data[len(bom) :].decode(encoding))
            except UnicodeDecodeError as error:
                return Caption(None, f"{name} starts with a {encoding} byte-order mark but does not decode: {error}")
    try:
        return Caption(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        not_utf8 = f"byte 0x{data[error.start]:02x} at offset {error.start}"
    if fallback_encoding:
        try:
            return Caption(data.decode(fallback_encoding))
        except UnicodeDecodeError as error:
            return Caption(
                None,
                f"{name} is neither UTF-8 ({not_utf8}) nor {fallback_encoding} ({error.reason} "
                f"at offset {error.start}); re-save it as UTF-8",
            )
    return Caption(
        None,
        f"{name} is not UTF-8 ({not_utf8}); set caption_encoding to its encoding "
        '(e.g. "cp1252" or "latin-1") or re-save it as UTF-8',
    )


def read_sidecar(path: Path, fallback_encoding: str | None = None) -> Caption:
    """The caption of a sidecar file, decoded by `decode_caption`."""
    return decode_caption(path.read_bytes(), fallback_encoding, name=f"caption file '{path.name}'")
