"""Read each entry of a dataloader list against the key registry: placeholders expanded, every key known, typed and
given its status (honoured, warned with why, refused with why), the `huggingface` block merged in SimpleTuner's
order. Problems and warnings are recorded against the backend they belong to, so one bad backend hides no other."""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from hf_assets.config import fields as F
from hf_assets.config import placeholders
from hf_assets.config import registry as R
from hf_assets.config.keyspec import BLOCKS, CACHE, CONDITIONING, DATASET, HUGGINGFACE, SCOPES, Key

CACHE_TYPES = ("text_embeds", "image_embeds", "conditioning_image_embeds")
PATH_KEYS = ("cache_dir", "cache_dir_vae", "instance_data_dir")


@dataclass
class Entry:
    """One enabled entry: where it is reported, its scope and its keys after checks (top level and blocks merged)."""

    index: int
    id: str
    scope: str  # registry.DATASET or registry.CACHE
    values: dict[str, Any] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)  # key -> "entry" or "huggingface": where its value came from
    rejected: set[str] = field(default_factory=set)  # keys given with a wrong or refused value (already reported)
    unused: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (where, why) -> keys accepted, not used
    placeholder_stand_ins: dict[str, set[str]] = field(default_factory=dict)  # key -> placeholders given stand-ins

    @property
    def where(self) -> str:
        return f"backend '{self.id}'"

    @property
    def dataset_type(self) -> str:
        return self.values.get("dataset_type", "image")


class Report:
    """Problems and warnings, each filed under its owner (a backend id, or "entry N" for one without a usable id)."""

    def __init__(self) -> None:
        self.problems: dict[str, list[str]] = {}
        self.warnings: dict[str, list[str]] = {}

    def problem(self, owner: str, where: str, message: str) -> None:
        self.problems.setdefault(owner, []).append(f"{where}: {message}")

    def warn(self, owner: str, where: str, message: str) -> None:
        self.warnings.setdefault(owner, []).append(f"{where}: {message}")


class EntryReader:
    """Turns raw entries into `Entry` objects, filing every problem and warning in `report`."""

    def __init__(self, report: Report):
        self.report = report
        self.trainer_values = placeholders.trainer_values()
        self.seen_ids: set[str] = set()

    def read(self, index: int, raw: Any) -> Entry | None:
        """The checked entry, or None when it is disabled or unusable (its problems are filed)."""
        if not isinstance(raw, dict):
            self.report.problem(f"entry-{index}", f"entry {index}", f"must be a JSON object, got {F.describe(raw)}")
            return None
        raw = {key: value for key, value in raw.items() if value is not None}  # null means unset, as in SimpleTuner
        scope = CACHE if raw.get("dataset_type") in CACHE_TYPES else DATASET
        backend_id = self._id(index, raw.get("id"), scope)
        if backend_id is None:
            return None
        entry = Entry(index, backend_id, scope)
        for key in ("disabled", "disable"):
            if key in raw and not isinstance(raw[key], bool):
                self._problem(entry, f"key '{key}' must be {F.BOOL.expected}, got {F.describe(raw[key])}")
        if raw.get("disabled") is True or raw.get("disable") is True:
            return None
        for key, value in raw.items():
            stand_ins: set[str] = set()
            value = placeholders.expand(value, backend_id, self.trainer_values, stand_ins.add)
            if stand_ins:
                entry.placeholder_stand_ins[key] = stand_ins
            self._top_level(entry, key, value)
        self._conditioning_by_type(entry)
        for (where, why), names in entry.unused.items():  # one warning per reason
            keys = (
                "key " + f"'{names[0]}' is"
                if len(names) == 1
                else "keys " + ", ".join(f"'{n}'" for n in names) + " are"
            )
            self.report.warn(entry.id, where, f"{keys} accepted but not used ({why})")
        return entry

    def _conditioning_by_type(self, entry: Entry) -> None:
        """As in SimpleTuner, a dataset that sets `conditioning_type` is a conditioning dataset whatever its
        `dataset_type` says (guides name a reference set by `conditioning_type` alone)."""
        if entry.scope != DATASET or "conditioning_type" not in entry.values or entry.dataset_type == "conditioning":
            return
        if "dataset_type" in entry.values:
            self._warn(
                entry,
                f"key 'conditioning_type' makes it a conditioning dataset, as in SimpleTuner, although "
                f'dataset_type is {json.dumps(entry.dataset_type)}; set "dataset_type": "conditioning" to say so',
            )
        entry.values["dataset_type"] = "conditioning"
        entry.places["dataset_type"] = "entry"

    def _id(self, index: int, value: Any, scope: str) -> str | None:
        """The entry's id when usable (dataset ids become folder names and partition keys); else files a problem."""
        ok = isinstance(value, str) and (
            F.BACKEND_ID.match(value) if scope == DATASET else value.strip() and not re.search(r"[/\\\0]", value)
        )
        if not ok:
            got = "no 'id'" if value is None else f"id {F.describe(value)}"
            rule = (
                "an 'id' of letters, digits, '_', '.' or '-' starting with a letter or digit (ids become folder "
                "names and partition keys)"
                if scope == DATASET
                else "a non-empty 'id' without '/' or '\\'"
            )
            self.report.problem(f"entry-{index}", f"entry {index}", f"{got}; every backend needs {rule}")
            return None
        if value in self.seen_ids:
            self.report.problem(value, f"backend '{value}'", "duplicate id; give each backend its own id")
            return None
        self.seen_ids.add(value)
        return value

    def _problem(self, entry: Entry, message: str) -> None:
        self.report.problem(entry.id, entry.where, message)

    def _warn(self, entry: Entry, message: str) -> None:
        self.report.warn(entry.id, entry.where, message)

    def _example_choice(self, entry: Entry, key: Key, value: Any, block: str | None = None) -> Any:
        """SimpleTuner's template configs list every choice ("random|center|corner"); such a value loads as its first
        choice, with a warning to pick one, so the template's backends still show. Other bad values stay refused."""
        choices = _example_choices(key, value)
        if not choices:
            return value
        self._warn(
            entry,
            f"key '{key.name}' lists the choices of an example config ({json.dumps(value)}): using the first, "
            f"{json.dumps(choices[0])}; set one of them to silence this warning",
        )
        return choices[0]

    def _checked(self, entry: Entry, key: Key, value: Any, block: str | None = None) -> bool:
        """True when `value` is well typed and not refused; files the problem or the warning otherwise."""
        where = entry.where + (f', "{block}"' if block else "")
        if key.check is not None and not key.check.check(value):
            shown = f"a {type(value).__name__} (hidden)" if key.secret else F.describe(value) + _hint(key, value)
            message = f"key '{key.name}' must be {key.check.expected}, got {shown}"
            self.report.problem(entry.id, where, message)
            entry.rejected.add(key.name)
            return False
        status, note = key.status_of(value)
        if status == "refused":
            shown = f"{key.name} {json.dumps(value)}" if status != key.status else f"key '{key.name}'"
            self.report.problem(entry.id, where, f"{shown} is not supported: {note}")
            entry.rejected.add(key.name)
            return False
        if status == "warned":
            entry.unused.setdefault((where, note), []).append(key.name)
        return True

    def _unknown(self, entry: Entry, key: str, scope: str, where: str = "") -> None:
        known = list(R.keys_in(scope))
        if scope == DATASET:
            known += list(R.keys_in(HUGGINGFACE))
        hint = F.closest_key(key, known)
        fix = f"did you mean '{hint}'?" if hint else "remove it or check its spelling"
        if hint == key:  # a known key in the wrong place: say where it goes, not "did you mean" itself
            homes = [f'the "{s}" block' for s in SCOPES if s not in (scope, DATASET, CACHE) and R.lookup(s, key)]
            fix = f"it belongs in {' or '.join(homes) or 'another kind of entry'}, not here"
        self.report.problem(entry.id, f"{entry.where}{where}", f"unknown key '{key}'; {fix}")

    def _top_level(self, entry: Entry, name: str, value: Any) -> None:
        key = R.lookup(entry.scope, name)
        if key is None:
            return self._unknown(entry, name, entry.scope)
        value = self._example_choice(entry, key, value)
        if not self._checked(entry, key, value):
            return
        if name == HUGGINGFACE:
            return self._merge_huggingface(entry, value)
        if name in BLOCKS:
            value = self._block(entry, name, value)
        self._set(entry, name, value, "entry")

    def _set(self, entry: Entry, name: str, value: Any, place: str) -> None:
        """Keep a value, applying SimpleTuner's order when the same key is in both places with different values."""
        if name not in entry.values or entry.values[name] == value:
            entry.values[name] = value
            entry.places[name] = place
            return
        key = R.dataset_keys()[name]
        first = key.read_first or "huggingface"
        kept, other = (value, entry.values[name]) if place == first else (entry.values[name], value)
        entry.values[name], entry.places[name] = kept, first
        self._warn(
            entry,
            f"key '{name}' is set at the top level and in \"huggingface\" with different values; SimpleTuner reads "
            f"the {'top level' if first == 'entry' else 'huggingface block'} first: using {F.describe(kept)}, not "
            f"{F.describe(other)}",
        )

    def _merge_huggingface(self, entry: Entry, block: dict) -> None:
        for name, value in block.items():
            if value is None:
                continue
            key = R.lookup(HUGGINGFACE, name)
            if key is None:
                if R.lookup(DATASET, name) is not None:
                    self._problem(
                        entry, f"key '{name}' belongs at the top level of the entry, not inside \"huggingface\""
                    )
                else:
                    self._unknown(entry, name, HUGGINGFACE, ', "huggingface" block')
                continue
            value = self._example_choice(entry, key, value, "huggingface")
            if not self._checked(entry, key, value, "huggingface"):
                continue
            if name in BLOCKS:
                value = self._block(entry, name, value)
            if DATASET in key.scopes:
                self._set(entry, name, value, "huggingface")

    def _block(self, entry: Entry, name: str, block: Any) -> Any:
        """A block's keys checked against its scope; the conditioning block keeps its generators' parameters."""
        scope = BLOCKS[name]
        if scope == CONDITIONING:
            return [self._generator(entry, item) for item in (block if isinstance(block, list) else [block])]
        kept = {}
        for sub, value in block.items():
            key = R.lookup(scope, sub)
            if key is None:
                self._unknown(entry, sub, scope, f', "{name}"')
            elif value is not None and self._checked(
                entry, key, (value := self._example_choice(entry, key, value)), name
            ):
                kept[sub] = value
        return kept

    def _generator(self, entry: Entry, item: dict) -> dict:
        """One conditioning object: its own keys type-checked; every other key is a parameter of its generator."""
        if not isinstance(item.get("type"), str) or not item["type"]:
            self._problem(entry, "each conditioning object needs a 'type' naming its generator, e.g. \"canny\"")
        for sub, value in item.items():
            key = R.lookup(CONDITIONING, sub)
            if key is not None and key.check is not None and value is not None and not key.check.check(value):
                where = f'{entry.where}, "conditioning"'
                self.report.problem(
                    entry.id, where, f"key '{sub}' must be {key.check.expected}, got {F.describe(value)}"
                )
        return dict(item)


def _example_choices(key: Key, value: Any) -> list[str]:
    """The choices of a value that lists them all, as SimpleTuner's example configs do ("random|center|corner"):
    only when the value itself is invalid and every part of it is a valid choice."""
    if not (isinstance(value, str) and "|" in value and key.check is not None) or key.check.check(value):
        return []
    parts = [part.strip() for part in value.split("|")]
    return parts if all(part and key.check.check(part) for part in parts) else []


def _hint(key: Key, value: Any) -> str:
    """A fix for values that list some valid choices among bad ones ("random|diagonal")."""
    if isinstance(value, str) and "|" in value and key.check is not None:
        choices = [part for part in value.split("|") if key.check.check(part)]
        if choices:
            return f' (the choices of an example config, it seems: pick one, e.g. "{choices[0]}")'
    return ""
