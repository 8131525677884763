"""Encoder settings: run config and environment merge field by field; bad values are refused before a run."""

from pathlib import Path

import dagster as dg
import pytest

from hf_assets.config import parse_config
from hf_assets.definitions import encoder_resource
from hf_assets.resources.encoders import EncodersResource


def a_backend(**entry):
    """A backend of a Hub dataset (no model of its own unless `entry` names one)."""
    base = {"id": "photos", "type": "huggingface", "dataset_name": "user/photos", "caption_column": "caption"}
    return parse_config([{**base, **entry}], Path("/configs/dataloader.json")).backends[0]


def settings_in_a_run(run_config: dict | None = None, look=None) -> dict:
    """What `look(encoders)` gives in a real in-process run; by default the settings and the loaded model path."""
    seen = {}

    @dg.asset
    def probe(encoders: EncodersResource) -> None:
        seen.update(
            look(encoders) if look else {**encoders.settings(), "loaded_model": encoders.for_backend(a_backend()).model}
        )

    result = dg.materialize([probe], resources={"encoders": encoder_resource()}, run_config=run_config or {})
    assert result.success
    return seen


def test_run_config_for_one_setting_keeps_the_environment_for_the_others(monkeypatch, tiny_sdxl):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_DEVICE", "cpu")
    monkeypatch.setenv("HF_ASSETS_TEXT_BATCH_SIZE", "16")
    seen = settings_in_a_run({"resources": {"encoders": {"config": {"vae_batch_size": 4}}}})
    assert seen["vae_batch_size"] == 4
    assert seen["model"] == seen["loaded_model"] == str(tiny_sdxl)
    assert seen["device"] == "cpu" and seen["text_batch_size"] == 16


def test_run_config_wins_over_the_environment_for_the_settings_it_names(monkeypatch, tiny_sdxl):
    monkeypatch.setenv("HF_ASSETS_MODEL", "/nowhere/else")
    monkeypatch.setenv("HF_ASSETS_VAE_BATCH_SIZE", "2")
    seen = settings_in_a_run({"resources": {"encoders": {"config": {"model": str(tiny_sdxl), "vae_batch_size": 8}}}})
    assert seen["loaded_model"] == str(tiny_sdxl) and seen["vae_batch_size"] == 8


def test_without_run_config_the_environment_applies(monkeypatch, tiny_sdxl):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_DECODE_WORKERS", "2")
    seen = settings_in_a_run()
    assert seen["loaded_model"] == str(tiny_sdxl) and seen["decode_workers"] == 2 and seen["shard_mb"] == 256


def test_the_launchpad_default_config_shows_the_effective_values_with_descriptions(monkeypatch):
    monkeypatch.setenv("HF_ASSETS_MODEL", "/models/sdxl")
    monkeypatch.setenv("HF_ASSETS_LATENT_DTYPE", "bf16")
    field = encoder_resource().get_resource_definition().config_schema.as_field()
    assert field.default_value["model"] == "/models/sdxl" and field.default_value["latent_dtype"] == "bf16"
    for name, config_field in field.config_type.fields.items():
        assert config_field.description and config_field.description.startswith(f"HF_ASSETS_{name.upper()}:"), name


@pytest.mark.parametrize(
    ("setting", "value"),
    [("device", "gpu"), ("device", "cuda:x"), ("dtype", "float8"), ("latent_dtype", "int8")],
)
def test_a_value_outside_a_closed_set_is_refused_by_the_launchpad_schema(setting, value, tiny_sdxl, monkeypatch):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    with pytest.raises(dg.DagsterInvalidConfigError, match=f"encoders:config:{setting}"):
        settings_in_a_run({"resources": {"encoders": {"config": {setting: value}}}})


def test_the_device_accepts_cuda_with_an_index():
    assert EncodersResource(device="cuda:3").device == "cuda:3"


def test_a_bad_environment_value_names_the_variable_and_the_choices():
    with pytest.raises(ValueError, match=r"dtype \(from environment variable HF_ASSETS_DTYPE\) = 'float8'.*'bf16'"):
        EncodersResource.from_environment(environ={"HF_ASSETS_DTYPE": "float8"})
    with pytest.raises(ValueError, match=r"vae_batch_size \(from environment variable HF_ASSETS_VAE_BATCH_SIZE\)"):
        EncodersResource.from_environment(environ={"HF_ASSETS_VAE_BATCH_SIZE": "-1"})


def test_an_out_of_range_run_config_value_fails_the_run_naming_the_setting(tiny_sdxl, monkeypatch):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    with pytest.raises(dg.DagsterResourceFunctionError) as failure:
        settings_in_a_run({"resources": {"encoders": {"config": {"vae_batch_size": -1}}}})
    assert "vae_batch_size" in str(failure.value.__cause__) and "greater than or equal to 0" in str(
        failure.value.__cause__
    )


def job_settings_in_a_run(run_config: dict | None = None) -> dict:
    """The EncodeSettings (and the text compile mode) an encoding step gets in a real in-process run."""
    return settings_in_a_run(run_config, lambda e: {"job": e.encode_settings(), "text_compile": e.text_compile})


def test_speed_settings_default_to_what_the_device_runs_best(monkeypatch, tiny_sdxl):
    from hf_assets.cores import usable_cores
    from hf_assets.encode.decode_workers import default_decode_workers

    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_DEVICE", "cpu")
    seen = job_settings_in_a_run()
    job = seen["job"]
    assert (job.compile, job.memory_format, job.decode, job.batch_size) == ("off", "auto", "pillow", 0)
    assert job.decode_workers == default_decode_workers(usable_cores(), 1)
    assert seen["text_compile"] == "off"  # auto compiles the VAE on cuda only, never the text encoders
    monkeypatch.setenv("HF_ASSETS_COMPILE", "max-autotune")
    monkeypatch.setenv("HF_ASSETS_DECODE_WORKERS", "3")
    seen = job_settings_in_a_run({"resources": {"encoders": {"config": {"memory_format": "channels_last"}}}})
    assert (seen["job"].compile, seen["job"].decode_workers, seen["job"].memory_format) == (
        "max-autotune",
        3,
        "channels_last",
    )
    assert seen["text_compile"] == "max-autotune"


def test_gpu_decode_on_a_cpu_device_is_refused_with_the_fix(monkeypatch, tiny_sdxl):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_DEVICE", "cpu")
    with pytest.raises(ValueError, match="decode=nvjpeg decodes on the GPU, but the encoders run on cpu"):
        job_settings_in_a_run({"resources": {"encoders": {"config": {"decode": "nvjpeg"}}}})


@pytest.mark.parametrize(
    ("executor", "device", "gpus"),
    [("multiprocess", "cuda", 8), ("dask", "cuda", 8), ("in_process", "cuda", 1), ("multiprocess", "cpu", 1)],
)
def test_decode_workers_share_the_cores_among_the_gpus_encoding_at_once(monkeypatch, executor, device, gpus):
    import torch

    from hf_assets.resources.encoders import concurrent_gpus

    monkeypatch.setenv("HF_ASSETS_EXECUTOR", executor)
    monkeypatch.setenv("HF_ASSETS_GPUS", "8")
    assert concurrent_gpus(torch.device(device)) == gpus


def test_a_cpu_shard_step_encodes_with_the_cpu_threads_setting_and_gives_the_threads_back(monkeypatch, tiny_sdxl):
    import torch

    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_DEVICE", "cpu")
    monkeypatch.setenv("HF_ASSETS_CPU_THREADS", "3")
    seen = {}

    @dg.asset
    def probe(encoders: EncodersResource) -> None:
        seen["before"] = torch.get_num_threads()
        with encoders.for_shard(a_backend(), 5) as loaded:
            seen["inside"], seen["device"] = torch.get_num_threads(), loaded.device.type
        seen["after"] = torch.get_num_threads()

    assert dg.materialize([probe], resources={"encoders": encoder_resource()}).success
    assert seen["inside"] == 3 and seen["device"] == "cpu" and seen["after"] == seen["before"] != 3


def models_in_a_run(backends, run_config: dict | None = None) -> dict:
    """backend id -> the model its Encoders load in a real in-process run (or the error it raises)."""
    seen = {}

    @dg.asset
    def probe(encoders: EncodersResource) -> None:
        for backend in backends:
            try:
                seen[backend.id] = encoders.for_backend(backend).model
            except (ValueError, OSError) as error:
                seen[backend.id] = error

    assert dg.materialize([probe], resources={"encoders": encoder_resource()}, run_config=run_config or {}).success
    return seen


def test_each_backend_encodes_with_the_model_its_entry_names_else_the_environments(monkeypatch, tmp_path, tiny_sdxl):
    wan = tmp_path / "wan"
    wan.mkdir()
    (wan / "model_index.json").write_text("{}")
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_VAE", str(tiny_sdxl / "vae"))  # goes with HF_ASSETS_MODEL only
    own = a_backend(id="clips", dataset_type="video", pretrained_model_name_or_path=str(wan))
    plain = a_backend(id="photos")
    assert models_in_a_run([own, plain]) == {"clips": str(wan), "photos": str(tiny_sdxl)}
    choice = EncodersResource.from_environment().model_choice(own)
    assert (choice.vae, choice.model_origin) == ("", "backend 'clips' key pretrained_model_name_or_path")
    # The launchpad's model is an explicit choice for this run: it wins over the entry's.
    run = {"resources": {"encoders": {"config": {"model": str(tiny_sdxl)}}}}
    assert models_in_a_run([own], run) == {"clips": str(tiny_sdxl)}


def test_a_video_backend_without_a_model_of_its_own_takes_the_video_model(monkeypatch, tmp_path, tiny_sdxl):
    monkeypatch.setenv("HF_ASSETS_MODEL", str(tiny_sdxl))
    monkeypatch.setenv("HF_ASSETS_VIDEO_MODEL", str(tmp_path))
    clips, photos = a_backend(id="clips", dataset_type="video"), a_backend(id="photos")
    choice = EncodersResource.from_environment().model_choice(clips)
    assert (choice.model, choice.model_origin) == (str(tmp_path), "environment variable HF_ASSETS_VIDEO_MODEL")
    assert EncodersResource.from_environment().model_choice(photos).model == str(tiny_sdxl)


def test_a_relative_model_folder_resolves_against_the_config_file_and_a_hub_id_stays_an_id():
    assert a_backend(pretrained_model_name_or_path="./models/wan").model == "/configs/models/wan"
    assert a_backend(pretrained_model_name_or_path="Wan-AI/Wan2.1-T2V-1.3B-Diffusers").model == (
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    )


def test_without_any_model_the_run_starts_and_only_encoding_fails_naming_every_way_to_set_one(monkeypatch):
    monkeypatch.delenv("HF_ASSETS_MODEL", raising=False)
    monkeypatch.delenv("HF_ASSETS_VIDEO_MODEL", raising=False)
    (error,) = models_in_a_run([a_backend(id="mine")]).values()  # resource set up, nothing asked for a model
    assert isinstance(error, ValueError)
    message = str(error)
    assert message.startswith("backend 'mine' has no model to encode with: set pretrained_model_name_or_path")
    assert "HF_ASSETS_MODEL (HF_ASSETS_VIDEO_MODEL for video backends)" in message and "scan_datasets" in message


def test_a_missing_model_folder_is_reported_under_the_key_that_named_it(monkeypatch):
    monkeypatch.delenv("HF_ASSETS_MODEL", raising=False)
    (error,) = models_in_a_run([a_backend(id="mine", pretrained_model_name_or_path="./no/such/pipeline")]).values()
    assert isinstance(error, OSError)
    assert "backend 'mine' key pretrained_model_name_or_path='/configs/no/such/pipeline': no such folder" in str(error)
    assert "HF_ASSETS_MODEL" not in str(error)
