"""What a cache's last triage found wrong and repaired: kept in repairs.json for the checks and the run's metadata."""

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_assets.cache.atomic import write_json_atomic

REPAIRS_FILE = "repairs.json"
log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class Repairs:
    """What triage (`EncodedCache.triage`) found wrong with a cache and repairs by encoding again (or recovered
    without encoding)."""

    manifest: str | None = None  # why the manifest could not be used (its entries come back from shard headers)
    unreadable_shards: dict[str, str] = field(default_factory=dict)  # shard -> reason; their entries are redone
    unreadable_entries: int = 0
    nonfinite_keys: list[str] = field(default_factory=list)  # entries holding NaN or inf
    reencode: int = 0  # of those, wanted again by this triage
    recovered_entries: int = 0  # entries found in shards nothing recorded (no re-encoding needed)

    @property
    def any(self) -> bool:
        return bool(self.manifest or self.unreadable_shards or self.nonfinite_keys or self.recovered_entries)

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and names, as repairs.json holds them."""
        return {
            "manifest": self.manifest,
            "unreadable_shards": self.unreadable_shards,
            "unreadable_entries": self.unreadable_entries,
            "nonfinite_entries": len(self.nonfinite_keys),
            "nonfinite_examples": self.nonfinite_keys[:5],
            "reencoded_nonfinite": self.reencode,
            "recovered_entries": self.recovered_entries,
            "at": _now(),
        }

    def record(self, directory: Path) -> None:
        """Log what was found and write repairs.json (what the last triage repaired) in the cache directory."""
        if self.manifest:
            log.warning("%s; rebuilding it from the shards' headers", self.manifest)
        if self.recovered_entries:
            log.warning(
                "%s: recovered %d entries from shards that no manifest or journal records",
                directory,
                self.recovered_entries,
            )
        for shard, reason in self.unreadable_shards.items():
            log.warning("unreadable shard %s: %s; its entries are encoded again", shard, reason)
        if self.nonfinite_keys:
            log.warning("%s: %d entries hold NaN or inf; they are encoded again", directory, len(self.nonfinite_keys))
        try:
            write_json_atomic(self.summary(), Path(directory) / REPAIRS_FILE)
        except OSError as error:
            log.warning("could not write %s: %s", Path(directory) / REPAIRS_FILE, error)


def read_repairs(directory: str | os.PathLike) -> dict[str, Any]:
    """What the last triage of the cache in `directory` found and repaired ({} when it was never triaged)."""
    try:
        return json.loads((Path(directory) / REPAIRS_FILE).read_text())
    except (OSError, ValueError):
        return {}
