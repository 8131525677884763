"""What a check found: how many entries failed and a few of them. Torch-free, so the metadata checks can use it
without the encoder caches' modules (which import torch, some 190 MB of memory in a metadata run)."""

from dataclasses import dataclass, field

EXAMPLES = 5


@dataclass
class Finding:
    """How many entries failed a check, and a few of them."""

    count: int = 0
    examples: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.count == 0

    def add(self, example) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)
