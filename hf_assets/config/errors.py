"""The one error a dataloader config raises: every problem found, one per line, each naming backend, key and fix."""

from pathlib import Path


class ConfigError(ValueError):
    """A dataloader config (or one backend of it) that cannot be used; lists every problem found, one per line."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = Path(path)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"dataloader config {self.path} has {len(self.problems)} problem(s):\n{lines}")
