"""The environment variable names: one module spells them, and the encoders resource reads exactly those."""

import ast
import re
from pathlib import Path

import pytest

from hf_assets import env
from hf_assets.resources.encoders import EncodersResource

PACKAGE = Path(env.__file__).parent


def test_resource_settings_are_read_from_the_named_variables():
    names = EncodersResource.env_names()
    assert names["model"] == env.MODEL == "HF_ASSETS_MODEL"
    assert names["vae"] == env.VAE == "HF_ASSETS_VAE"
    assert names["device"] == env.DEVICE == "HF_ASSETS_DEVICE"
    assert names["latent_dtype"] == "HF_ASSETS_LATENT_DTYPE"
    assert set(names.values()) == {env.resource_variable(setting) for setting in EncodersResource.model_fields}


def test_no_other_module_spells_a_variable_name_in_code():
    """Names appear in prose (docstrings, messages) but every os.environ lookup goes through hf_assets.env."""
    constants = {value for key, value in vars(env).items() if key.isupper() and isinstance(value, str)}
    assert all(re.fullmatch(r"HF_[A-Z_]+", name) for name in constants - {env.PREFIX})
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "env.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            values = [node.value] if isinstance(node, ast.Assign) else node.args if isinstance(node, ast.Call) else []
            if any(
                isinstance(v, ast.Constant) and isinstance(v.value, str) and re.fullmatch(r"HF_[A-Z_]+", v.value)
                for v in values
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == [], f"read these through hf_assets.env: {found}"


@pytest.mark.parametrize(
    ("value", "offline"),
    [
        ("1", True),
        ("true", True),
        ("ON", True),
        (" yes ", True),
        ("", False),
        ("0", False),
        ("false", False),
        ("no", False),
    ],
)
def test_hub_offline_reads_the_variable_as_huggingface_hub_does(monkeypatch, value, offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert env.hub_offline() is offline
