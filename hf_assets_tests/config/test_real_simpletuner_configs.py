"""SimpleTuner's own dataloader configs, when a folder of them is at hand (they are SimpleTuner's files, never
committed here). Set HF_ASSETS_TEST_SIMPLETUNER_CONFIGS to that folder, e.g. one filled with
`git show HEAD:<path>` from a SimpleTuner checkout for each `simpletuner/examples/*.json` and
`config/*.json.example`. Each config loads, or is refused for a documented reason naming the backend and the key;
either way the code location loads with a partition per enabled backend."""

import json
import os
import re
from pathlib import Path

import pytest

from hf_assets.config import ConfigError, load_config

FOLDER = os.environ.get("HF_ASSETS_TEST_SIMPLETUNER_CONFIGS")
CACHE_TYPES = ("text_embeds", "image_embeds", "conditioning_image_embeds")
# The documented reasons a shipped config may be refused for.
REASONS = [
    r"backend '[^']+': dataset_type \"audio\" is not supported: audio is out of scope",
]

pytestmark = pytest.mark.skipif(not FOLDER, reason="set HF_ASSETS_TEST_SIMPLETUNER_CONFIGS to a folder of them")


def configs() -> list[Path]:
    return sorted(p for p in Path(FOLDER or ".").glob("*") if p.suffix in (".json", ".example"))


def enabled_dataset_ids(path: Path) -> list[str]:
    """The enabled dataset ids, each followed by the ids of the datasets its `conditioning` list generates."""
    entries = json.loads(path.read_text())
    ids = []
    for e in entries:
        if e.get("disabled") or e.get("disable") or e.get("dataset_type") in CACHE_TYPES:
            continue
        ids.append(e["id"])
        generators = e.get("conditioning") or []
        for g in [generators] if isinstance(generators, dict) else generators:
            ids.append(f"{e['id']}_conditioning_{g['type']}")
    return ids


def test_each_simpletuner_config_loads_or_is_refused_for_a_documented_reason():
    assert configs(), f"no configs in {FOLDER}"
    loaded, refused = [], {}
    for path in configs():
        try:
            config = load_config(path)
        except ConfigError as exc:
            refused[path.name] = exc.problems
            continue
        assert config.backend_ids == enabled_dataset_ids(path), path.name
        loaded.append(path.name)
    for name, problems in refused.items():
        undocumented = [p for p in problems if not any(re.search(r, p) for r in REASONS)]
        assert undocumented == [], f"{name}: {undocumented}"
    print(f"\n{len(loaded)} of {len(configs())} SimpleTuner configs load; refused: {sorted(refused)}")


def test_the_code_location_of_each_config_has_a_partition_per_enabled_backend():
    from hf_assets.definitions import build_definitions

    for path in configs():
        defs = build_definitions(path)
        keys = defs.resolve_job_def("scan_datasets").partitions_def.get_partition_keys()
        assert keys == enabled_dataset_ids(path), path.name
