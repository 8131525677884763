"""The README stays a short door into the project: its first screen says what hf_assets is and how to start, and every
page it hands details to exists, is linked, and links only to files that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "bench" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MOVED = ["docs/simpletuner.md", "docs/cache-format.md", "docs/cluster/README.md", "docs/failures.md", "bench/README.md"]
FIRST_SCREEN_LINES = 40


def links(page: Path) -> list[str]:
    """Relative link targets of a Markdown page, without their #anchors."""
    targets = re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))
    return [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_the_first_screen_says_what_the_project_is_and_how_to_start():
    screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN_LINES])
    assert "Dagster asset graph" in screen and "SimpleTuner" in screen and "partition" in screen
    for asset in ("raw_split", "filtered_index", "aspect_buckets", "bucket_previews", "vae_latents", "text_embeds"):
        assert asset in screen, asset
    for command in ("make demo", "make test", "make ui"):
        assert re.search(rf"^{command}\b", screen, re.M), command


def test_the_moved_details_are_linked_from_the_readme():
    linked = set(links(README))
    assert [page for page in MOVED if page not in linked] == []


def test_every_relative_link_of_the_docs_points_at_a_file():
    broken = [
        f"{page.relative_to(ROOT)} -> {target}"
        for page in PAGES
        for target in links(page)
        if target and not (page.parent / target).exists()
    ]
    assert broken == []


def test_the_readme_is_short_and_its_headings_are_unique():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 800  # the key table of every SimpleTuner key is about 180 of them
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    assert len(headings) == len(set(headings))
