"""docs/architecture.md names modules that exist: a rename that leaves the page behind fails here."""

import re
from pathlib import Path

import hf_assets

REPO = Path(hf_assets.__file__).resolve().parents[1]
PAGE = REPO / "docs" / "architecture.md"


def named_modules(text: str) -> set[str]:
    """Every `something.py` or `package/something.py` the page names."""
    return set(re.findall(r"\b((?:[a-z_]+/)*[a-z_]+\.py)\b", text))


def test_every_module_the_page_names_exists():
    files = [
        p.relative_to(REPO).as_posix()
        for d in ("hf_assets", "hf_assets_tests", "bench", "examples")
        for p in (REPO / d).rglob("*.py")
    ]
    missing = sorted(
        n for n in named_modules(PAGE.read_text()) if not any(f == n or f.endswith("/" + n) for f in files)
    )
    assert missing == []


def test_the_reader_finds_bare_and_package_paths():
    assert named_modules("`encode/engine.py` and `sources.py`, not sources.pyc") == {"encode/engine.py", "sources.py"}
