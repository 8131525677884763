"""Value checks for dataloader keys (which key takes which check is declared in `config.registry`)."""

import codecs
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BACKEND_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Field:
    """One accepted key: how to check its value and what to say when it is wrong."""

    check: Callable[[Any], bool]
    expected: str


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_str_or_str_list(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v))


def is_text_encoding(v: Any) -> bool:
    """True for a name Python knows as a text encoding (e.g. "latin-1", "cp1252", "shift_jis")."""
    try:
        return isinstance(v, str) and codecs.lookup(v)._is_text_encoding  # type: ignore[attr-defined]
    except LookupError:
        return False


def one_of(*choices: str) -> Field:
    return Field(lambda v: v in choices, "one of " + ", ".join(f'"{c}"' for c in choices))


BOOL = Field(lambda v: isinstance(v, bool), "true or false (a JSON boolean, without quotes)")
STR = Field(_is_str, "a string")
INT_POS = Field(lambda v: _is_int(v) and v >= 1, "a whole number >= 1")
INT_NONNEG = Field(lambda v: _is_int(v) and v >= 0, "a whole number >= 0")
NUM_POS = Field(lambda v: _is_number(v) and v > 0, "a number > 0")
NUM_NONNEG = Field(lambda v: _is_number(v) and v >= 0, "a number >= 0")
STR_OR_LIST = Field(_is_str_or_str_list, "a column name or a non-empty list of column names")
OBJECT = Field(lambda v: isinstance(v, dict), "a JSON object")
NUMBER = Field(_is_number, "a number")
FRACTION = Field(lambda v: _is_number(v) and 0 <= v <= 1, "a number from 0 to 1 (a share: 0.5 is half)")
ANY = Field(lambda v: True, "any JSON value")
STR_OR_STRS = Field(_is_str_or_str_list, "a string or a non-empty list of strings")
OBJECT_OR_OBJECTS = Field(
    lambda v: isinstance(v, dict) or (isinstance(v, list) and all(isinstance(x, dict) for x in v)),
    "a JSON object or a list of JSON objects",
)
CSV_OR_LIST = Field(
    lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "a comma or space separated string, or a list of strings",
)
ASPECT_BUCKETS = 'a list of aspect ratios such as [0.75, 1.0, 1.33], or [{"aspect": 1.0, "weight": 0.6}, ...]'


def closest_key(key: str, known: list[str] | set[str] | dict) -> str | None:
    """The known key nearest in spelling to `key`, if any is close."""
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return match[0] if match else None


def describe(value: Any) -> str:
    """A short, JSON-flavoured rendering of a wrong value for an error message."""
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
