"""SimpleTuner's placeholders in an entry's strings: `{model_family}`, `{output_dir}`, `{id}` and `{env:NAME}`.

SimpleTuner replaces them in every string of every entry before reading it (`fill_variables_in_config_paths`):
`{model_family}` and `{output_dir}` come from its trainer arguments, `{id}` is the entry's id and `{env:NAME}` an
environment variable ("" when unset). Other `{...}` text is left as written. hf_assets takes the trainer's values
from `HF_ASSETS_MODEL_FAMILY` and `HF_ASSETS_OUTPUT_DIR`; where one is unset, it substitutes a stand-in and says
where the caches go.
"""

import os
import re
from collections.abc import Callable
from typing import Any

from hf_assets import env

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
UNSET = {"model_family": "default", "output_dir": "output"}  # stand-ins when the trainer's value is unknown
VARIABLES = {"model_family": env.MODEL_FAMILY, "output_dir": env.OUTPUT_DIR}


def trainer_values() -> dict[str, str | None]:
    """The trainer's placeholder values from the environment (None where unset)."""
    return {name: os.environ.get(variable) or None for name, variable in VARIABLES.items()}


def expand(value: Any, backend_id: str, values: dict[str, str | None], unset: Callable[[str], None]) -> Any:
    """`value` with placeholders replaced in every string it holds (lists and objects walked); `unset(name)` is
    called for each trainer placeholder that had no value and got its stand-in."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda match: _replace(match, backend_id, values, unset), value)
    if isinstance(value, list):
        return [expand(item, backend_id, values, unset) for item in value]
    if isinstance(value, dict):
        return {key: expand(item, backend_id, values, unset) for key, item in value.items()}
    return value


def _replace(match: re.Match, backend_id: str, values: dict[str, str | None], unset: Callable[[str], None]) -> str:
    token = match.group(1)
    if token.startswith("env:"):
        return os.environ.get(token[4:], "")
    if token == "id":
        return backend_id
    if token in values:
        if values[token] is None:
            unset(token)
            return UNSET[token]
        return str(values[token])
    return match.group(0)
