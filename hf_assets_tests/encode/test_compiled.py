"""The compile setting: modes, static graphs per shape (each compile logged), the raised recompile limit, and the
on-disk cache that spares a second process the compile (inductor runs on CPU too)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hf_assets.encode.compiled import (
    INDUCTOR_CACHE_ENV,
    RECOMPILE_LIMIT,
    StaticCompiled,
    compile_text_encoders,
    default_cache_dir,
    raise_recompile_limit,
    resolve_compile,
    use_compile_cache,
)


def test_auto_compiles_on_cuda_only_and_unknown_modes_are_refused():
    assert resolve_compile("auto", torch.device("cuda")) == "default"
    assert resolve_compile("auto", torch.device("cpu")) == "off"
    assert resolve_compile("max-autotune", torch.device("cpu")) == "max-autotune"
    with pytest.raises(ValueError, match="compile='fast'"):
        resolve_compile("fast", torch.device("cpu"))


def test_the_cache_folder_is_ours_unless_inductors_variable_names_one(tmp_path, monkeypatch):
    monkeypatch.delenv(INDUCTOR_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "hf_assets" / "torch_compile"
    assert use_compile_cache(None, log=lambda m: None) == default_cache_dir()
    assert os.environ[INDUCTOR_CACHE_ENV] == str(default_cache_dir().resolve())
    monkeypatch.delenv(INDUCTOR_CACHE_ENV)
    assert use_compile_cache(tmp_path / "mine", log=lambda m: None) == tmp_path / "mine"
    monkeypatch.setenv(INDUCTOR_CACHE_ENV, str(tmp_path / "shared"))
    assert use_compile_cache(tmp_path / "mine", log=lambda m: None) == tmp_path / "shared"


def test_each_new_shape_is_compiled_once_and_logged():
    with torch._dynamo.config.patch(recompile_limit=8):  # torch's default, restored after
        messages: list[str] = []
        graphs: list[tuple] = []

        def counting(graph, example_inputs):  # a torch.compile backend that records each graph it is given
            graphs.append(tuple(example_inputs[0].shape))
            return graph.forward

        compiled = StaticCompiled(lambda x: x * 2, "default", "a doubler", messages.append, backend=counting)
        assert torch._dynamo.config.recompile_limit == RECOMPILE_LIMIT
        for shape in [(2, 3), (2, 3), (4, 3), (2, 3), (4, 3), (5, 3)]:
            assert torch.equal(compiled(torch.ones(shape)), torch.full(shape, 2.0))
        assert graphs == [(2, 3), (4, 3), (5, 3)]  # static graphs: no dynamic-shape recompile
        assert [m.split(" in ")[0] for m in messages] == [
            "compiled a doubler (default) for 2x3 torch.float32",
            "compiled a doubler (default) for 4x3 torch.float32",
            "compiled a doubler (default) for 5x3 torch.float32",
        ]
        assert set(compiled.compile_seconds) == {(((s, 3), torch.float32, "cpu"),) for s in (2, 4, 5)}
        raise_recompile_limit(4)  # never lowers it
        assert torch._dynamo.config.recompile_limit == RECOMPILE_LIMIT


def test_text_encoders_compile_in_place_once_and_give_the_same_embeddings(tiny_pipelines):
    from hf_assets.encode.model_loading import load_text_encoders
    from hf_assets.encode.text import encode_captions

    encoders = load_text_encoders(tiny_pipelines["sdxl"])
    captions = ["a photo of a cat", "a dog", "the red photo"]
    eager = encode_captions(encoders, captions, "sdxl")
    messages: list[str] = []
    assert compile_text_encoders(encoders, "off") is encoders and not messages
    compile_text_encoders(encoders, "default", log=messages.append, backend="eager")
    forwards = [e.model.forward for e in encoders]
    compile_text_encoders(encoders, "default", log=messages.append, backend="eager")  # already compiled: kept
    assert [e.model.forward for e in encoders] == forwards
    for _ in range(2):
        compiled = encode_captions(encoders, captions, "sdxl")
    for a, b in zip(eager, compiled):
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert len(messages) == 2 and all(m.startswith("compiled the text encoder text_encoder") for m in messages)


COMPILE_ONCE = """
import json, sys, torch
from hf_assets.encode.compiled import StaticCompiled, cache_counters, use_compile_cache

class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.norm = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.GroupNorm(2, 8)

    def forward(self, x):
        return torch.nn.functional.silu(self.norm(self.conv(x)))

use_compile_cache(None, log=lambda m: None)
messages = []
block = StaticCompiled(Block().eval(), "default", "a block", messages.append)
with torch.inference_mode():
    out = block(torch.ones(2, 3, 16, 16))
print(json.dumps({**cache_counters(), "log": messages, "sum": float(out.sum())}))
"""


@pytest.mark.slow
def test_a_second_process_loads_the_compiled_graph_from_disk(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != INDUCTOR_CACHE_ENV}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), OMP_NUM_THREADS="1")

    def run() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", COMPILE_ONCE], env=env, capture_output=True, text=True, timeout=300, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["misses"] == 1 and first["hits"] == 0
    assert second["hits"] == 1 and second["misses"] == 0
    assert second["sum"] == first["sum"]
    assert "(from the on-disk cache)" in second["log"][0] and "(from" not in first["log"][0]
    assert any(Path(tmp_path / "xdg" / "hf_assets" / "torch_compile").rglob("*.py"))  # the generated kernels
