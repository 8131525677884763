"""Samples the latent update drops: size columns that disagree with the image, late EXIF, and decode failures
recorded in dropped.parquet so that an unchanged bad image is not decoded (nor the VAE loaded) on every run."""

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from hf_assets.cache.latents import open_latents
from hf_assets.encode import image_media
from hf_assets.encode.encoder_set import Encoders
from hf_assets.encode.engine_types import LatentSettings
from hf_assets.encode.image_media import wanted_latents
from hf_assets_tests.conftest import photo_rows, write_hub_dataset
from hf_assets_tests.encode.test_image_media import prepare, run
from hf_assets_tests.encode.test_images import png_with_late_exif
from hf_assets_tests.imagegen import encode_image, truncated_jpeg

SIZE_COLUMNS = {"width_column": "width", "height_column": "height"}


def write_rows(tmp_path, rows):
    return write_hub_dataset(tmp_path / "data" / "photos", rows)


def dropped_table(backend) -> pa.Table:
    return pq.read_table(backend.vae_dir / "dropped.parquet")


def no_vae():
    pytest.fail("the VAE was loaded although nothing needed encoding")


def test_image_larger_or_smaller_than_its_size_columns_is_dropped_naming_the_columns(tmp_path, tiny_sdxl):
    rows = photo_rows(8, corrupt=())  # row 0 is a 640x480 JPEG, row 3 a 900x300 JPEG
    rows[0]["width"], rows[0]["height"] = 320, 240  # the image is larger: it used to encode its top-left quarter
    rows[3]["width"], rows[3]["height"] = 1800, 600  # the image is smaller: it used to fail "tile box does not fit"
    write_rows(tmp_path, rows)
    backend, split, buckets = prepare(tmp_path, **SIZE_COLUMNS)
    report = run(backend, split, buckets, tiny_sdxl)
    fix = "fix width_column/height_column or remove them to read sizes from the image headers"
    assert report.dropped == {
        "0.jpg": f"corrupt_image: CorruptImage: image is 640x480 but the dataset's size columns say 320x240; {fix}",
        "3.jpg": f"corrupt_image: CorruptImage: image is 900x300 but the dataset's size columns say 1800x600; {fix}",
    }
    cache = open_latents(backend.vae_dir)
    assert "0.jpg" not in cache and "3.jpg" not in cache and len(cache) == buckets.num_rows - 2
    assert report.encoded == buckets.num_rows - 2


def test_source_size_is_carried_and_part_of_every_latent_key(tmp_path, tiny_sdxl):
    write_rows(tmp_path, photo_rows(8, corrupt=()))
    backend, split, buckets = prepare(tmp_path, **SIZE_COLUMNS)
    encoders = Encoders(str(tiny_sdxl))
    settings = LatentSettings(encoders.vae_identity(), str(torch.float32), str(torch.float32))
    wanted = wanted_latents(buckets, split, backend.image_column, settings)
    assert wanted.column("source_width").equals(buckets.column("source_width"))
    assert wanted.column("source_height").equals(buckets.column("source_height"))
    widths = buckets.column("source_width").to_pylist()
    widths[2] += 1  # only the size the boxes were computed from differs
    other = buckets.set_column(
        buckets.schema.get_field_index("source_width"), "source_width", pa.array(widths, pa.int32())
    )
    changed = wanted_latents(other, split, backend.image_column, settings)
    same = pc.equal(wanted.column("settings_hash"), changed.column("settings_hash")).to_pylist()
    assert same == [i != 2 for i in range(buckets.num_rows)]


def test_png_with_exif_after_its_pixel_data_is_encoded_as_the_header_scan_sized_it(tmp_path, tiny_sdxl):
    rows = photo_rows(8, corrupt=())
    late = png_with_late_exif(640, 480, orientation=6, seed=11)  # Pillow's exif_transpose would make it 480x640
    rows[0]["image"]["bytes"] = late
    write_rows(tmp_path, rows)
    backend, split, buckets = prepare(tmp_path)  # sizes from image headers
    report = run(backend, split, buckets, tiny_sdxl)
    assert report.dropped == {} and report.encoded == buckets.num_rows
    record = buckets.filter(pc.equal(buckets.column("filename"), "0.jpg")).to_pylist()[0]
    assert (record["source_width"], record["source_height"]) == (640, 480)
    img = Image.open(io.BytesIO(late)).convert("RGB")  # stored orientation, as scanned
    img = img.resize((record["resize_width"], record["resize_height"]), Image.Resampling.LANCZOS)
    left, top = record["crop_left"], record["crop_top"]
    img = img.crop((left, top, left + record["target_width"], top + record["target_height"]))
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = Encoders(str(tiny_sdxl)).vae().encode(x).latent_dist.mean[0]
    assert torch.allclose(open_latents(backend.vae_dir)["0.jpg"], expected, atol=1e-4)


def test_decode_failure_is_not_retried_until_the_image_changes(tmp_path, tiny_sdxl):
    rows = photo_rows(8, corrupt=())
    rows[3]["image"]["bytes"] = truncated_jpeg(640, 480)  # header says 640x480, pixels are missing
    rows[3]["width"], rows[3]["height"] = 640, 480
    write_rows(tmp_path, rows)
    backend, split, buckets = prepare(tmp_path, **SIZE_COLUMNS)
    first = run(backend, split, buckets, tiny_sdxl)
    assert list(first.dropped) == ["3.jpg"] and first.dropped["3.jpg"].startswith("corrupt_image: CorruptImage: ")
    first_table = dropped_table(backend)

    second = run(backend, split, buckets, tiny_sdxl, vae_loader=no_vae)
    assert second.encoded == 0 and second.reused == buckets.num_rows - 1
    assert second.dropped == first.dropped
    assert dropped_table(backend).equals(first_table)

    rows[3]["image"]["bytes"] = encode_image(640, 480, "JPEG", seed=3)  # the bad image is replaced
    write_rows(tmp_path, rows)
    backend, split, buckets = prepare(tmp_path, **SIZE_COLUMNS)
    third = run(backend, split, buckets, tiny_sdxl)
    assert third.encoded == 1 and third.dropped == {}
    assert "3.jpg" in open_latents(backend.vae_dir) and dropped_table(backend).num_rows == 0


def test_dropped_parquet_records_filename_key_and_reason_with_no_key_for_unreadable_rows(tmp_path, tiny_sdxl):
    rows = photo_rows(8, corrupt=(2,))  # undecodable bytes; kept by the scan because sizes come from the columns
    rows[6]["image"] = {"bytes": b"", "path": None}  # nothing to read at all
    write_rows(tmp_path, rows)
    backend, split, buckets = prepare(tmp_path, **SIZE_COLUMNS)
    report = run(backend, split, buckets, tiny_sdxl)
    table = dropped_table(backend)
    assert table.column_names == ["filename", "key", "reason"]
    records = {r["filename"]: r for r in table.to_pylist()}
    assert set(records) == set(report.dropped) == {"2.jpg", "6.jpg"}
    assert records["6.jpg"]["key"] is None and records["6.jpg"]["reason"] == "unreadable_image"
    wanted = run_wanted(backend, split, buckets, tiny_sdxl)
    assert records["2.jpg"]["key"] == key_of(wanted, "2.jpg")


def test_drop_reasons_are_identical_across_runs_and_carry_no_memory_address(tmp_path, tiny_sdxl):
    rows = photo_rows(8, corrupt=())
    rows[2]["image"]["bytes"] = b"<html><body>429 Too Many Requests</body></html>"  # an error page saved as the image
    write_rows(tmp_path, rows)  # Pillow names the stream: "cannot identify image file <_io.BytesIO object at 0x...>"
    backend, split, buckets = prepare(tmp_path, **SIZE_COLUMNS)
    reasons = []
    for _ in range(2):
        (backend.vae_dir / "dropped.parquet").unlink(missing_ok=True)  # forget the failure: decode it again
        (backend.vae_dir / "dropped.json").unlink(missing_ok=True)
        reasons.append(run(backend, split, buckets, tiny_sdxl).dropped["2.jpg"])
    assert reasons[0] == reasons[1]
    expected = "corrupt_image: CorruptImage: cannot decode image: cannot identify image file <_io.BytesIO object>"
    assert reasons[0] == expected
    assert "0x" not in reasons[0]


def test_errors_other_than_decoding_are_retried_next_run(tmp_path, tiny_sdxl, monkeypatch):
    write_rows(tmp_path, photo_rows(8, corrupt=()))
    backend, split, buckets = prepare(tmp_path, **SIZE_COLUMNS)
    real = image_media.load_pixels

    def out_of_memory_for_640x480(*args, expected_size=None, **kwargs):
        if tuple(expected_size) == (640, 480):  # row 0 only
            raise MemoryError("cannot allocate the decode buffer")
        return real(*args, expected_size=expected_size, **kwargs)

    monkeypatch.setattr(image_media, "load_pixels", out_of_memory_for_640x480)
    first = run(backend, split, buckets, tiny_sdxl)
    assert first.dropped == {"0.jpg": "encode_error: MemoryError: cannot allocate the decode buffer"}
    monkeypatch.setattr(image_media, "load_pixels", real)
    second = run(backend, split, buckets, tiny_sdxl)
    assert second.encoded == 1 and second.dropped == {} and "0.jpg" in open_latents(backend.vae_dir)


def test_recorded_decode_failures_are_retried_with_another_decoder_version(tmp_path, tiny_sdxl, monkeypatch):
    rows = photo_rows(8, corrupt=())
    rows[3]["image"]["bytes"] = truncated_jpeg(640, 480)
    rows[3]["width"], rows[3]["height"] = 640, 480
    write_rows(tmp_path, rows)
    backend, split, buckets = prepare(tmp_path, **SIZE_COLUMNS)
    first = run(backend, split, buckets, tiny_sdxl)
    monkeypatch.setattr(image_media.ImageMedia, "decoder", "Pillow 99.0.0")  # an upgrade may decode what failed
    loads = []
    encoders = Encoders(str(tiny_sdxl))
    second = run(backend, split, buckets, tiny_sdxl, vae_loader=lambda: loads.append(1) or encoders.vae())
    assert loads == [1] and second.dropped == first.dropped and second.encoded == 0


def run_wanted(backend, split, buckets, model):
    encoders = Encoders(str(model))
    settings = LatentSettings(encoders.vae_identity(), str(torch.float32), str(torch.float32))
    return wanted_latents(buckets, split, backend.image_column, settings, backend.metadata_dir)


def key_of(wanted: pa.Table, filename: str) -> str:
    from hf_assets.cache.hashing import cache_keys

    row = wanted.filter(pc.equal(wanted.column("filename"), filename))
    return cache_keys(row.column("content_hash"), row.column("settings_hash"))[0].as_py()
