"""What a registry entry says about one SimpleTuner key: where it may appear, its status and its value check."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from hf_assets.config.fields import Field

Status = Literal["honoured", "warned", "refused"]
STATUSES: tuple[Status, ...] = ("honoured", "warned", "refused")

# Where a key may appear. DATASET: the top level of an image/video/conditioning entry. CACHE: the top level of a
# text_embeds / image_embeds / conditioning_image_embeds entry. The others are blocks inside a dataset entry.
DATASET = "entry"
CACHE = "cache entry"
HUGGINGFACE = "huggingface"
VIDEO = "video"
FILTER = "filter_func"
COMPOSITE = "composite_image_config"
CONDITIONING = "conditioning"
PARQUET = "parquet"
SCOPES = (DATASET, HUGGINGFACE, VIDEO, FILTER, COMPOSITE, PARQUET, CONDITIONING, CACHE)
BLOCKS = {
    VIDEO: VIDEO,
    FILTER: FILTER,
    COMPOSITE: COMPOSITE,
    PARQUET: PARQUET,
    CONDITIONING: CONDITIONING,
}  # key: scope

Place = Literal["entry", "huggingface"]


@dataclass(frozen=True)
class Key:
    """One key in one scope: its status, what it does here (honoured) or why not (warned, refused), its value check.

    `values` overrides the status for particular values (e.g. `"type": "csv"` is refused while `"type"` is
    honoured); `subkeys` names the documented keys of a block accepted as a whole; `read_first` says, for a key
    allowed both at the top level and in the `huggingface` block, which place SimpleTuner reads first.
    """

    name: str
    scopes: tuple[str, ...]
    status: Status
    note: str
    check: Field | None = None
    values: Mapping[Any, tuple[Status, str]] = field(default_factory=dict)
    subkeys: tuple[str, ...] = ()
    read_first: Place | None = None
    secret: bool = False  # a credential: its value never appears in a message

    def __post_init__(self) -> None:
        if self.status not in STATUSES or any(s not in STATUSES for s, _ in self.values.values()):
            raise ValueError(f"key {self.name!r}: status must be one of {STATUSES}")
        if any(scope not in SCOPES for scope in self.scopes):
            raise ValueError(f"key {self.name!r}: unknown scope in {self.scopes}")
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def status_of(self, value: Any) -> tuple[Status, str]:
        """(status, note) of this key given its value: a value-specific status where one is declared."""
        try:
            return self.values.get(value, (self.status, self.note))
        except TypeError:  # an unhashable value (a list, an object) has no value-specific status
            return self.status, self.note
