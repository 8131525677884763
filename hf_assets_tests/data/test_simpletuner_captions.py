"""SimpleTuner's caption keys on real scans: instanceprompt on every backend type, prepend_instance_prompt,
only_instance_prompt, textfile line variants (and disable_multiline_split), and max_num_samples' stable subset."""

import datasets
import pyarrow as pa

from hf_assets.config import parse_config
from hf_assets.data.index import build_filtered_index
from hf_assets.data.sources import open_split
from hf_assets.data.subset import keep_mask, sample_ranks
from hf_assets_tests.imagegen import encode_image


def scan(tmp_path, entry):
    backend = parse_config([entry], tmp_path / "dataloader.json").backends[0]
    return build_filtered_index(open_split(backend), backend)


def hub_entry(**settings):
    base = {"id": "photos", "type": "huggingface", "dataset_name": "data/photos", "caption_column": ["caption", "tags"]}
    return {**base, "fallback_caption_column": "metadata.caption", **settings}


def folder(tmp_path, captions: dict[str, bytes | None]):
    root = tmp_path / "imgs"
    root.mkdir(exist_ok=True)
    for i, (name, text) in enumerate(captions.items()):
        (root / f"{name}.jpg").write_bytes(encode_image(200 + 16 * i, 160, seed=i))
        if text is not None:
            (root / f"{name}.txt").write_bytes(text)
    return {"id": "loc", "type": "local", "instance_data_dir": "imgs"}


def test_instanceprompt_on_a_huggingface_backend_captions_every_readable_row(tmp_path, hub_dataset):
    index, dropped = scan(tmp_path, hub_entry(caption_strategy="instanceprompt", instance_prompt="sks photo"))
    assert index.num_rows == 23 and dropped["no_caption"] == 0 and dropped["unreadable_image"] == 1
    assert set(index["caption"].to_pylist()) == {"sks photo"}
    assert index["captions"].to_pylist()[0] == ["sks photo"]


def test_several_instance_prompts_are_variants_of_every_row(tmp_path, hub_dataset):
    index, _ = scan(tmp_path, hub_entry(caption_strategy="instanceprompt", instance_prompt=["a sks dog", "sks"]))
    assert all(variants == ["a sks dog", "sks"] for variants in index["captions"].to_pylist())


def test_prepend_instance_prompt_prefixes_every_variant_and_only_replaces_them(tmp_path, hub_dataset):
    plain, _ = scan(tmp_path, hub_entry())
    prepended, _ = scan(tmp_path, hub_entry(instance_prompt="sks", prepend_instance_prompt=True))
    assert prepended["filename"].to_pylist() == plain["filename"].to_pylist()
    for before, after in zip(plain["captions"].to_pylist(), prepended["captions"].to_pylist()):
        assert after == [f"sks {text}" for text in before]
    only, dropped = scan(tmp_path, hub_entry(instance_prompt="sks", only_instance_prompt=True))
    assert set(only["caption"].to_pylist()) == {"sks"} and dropped["no_caption"] == 0


def test_textfile_lines_are_variants_unless_multiline_split_is_disabled(tmp_path):
    entry = folder(tmp_path, {"a": b"a red bike\n\nparked by a wall\n", "b": b"one caption", "c": None})
    index, dropped = scan(tmp_path, {**entry, "caption_strategy": "textfile"})
    captions = dict(zip(index["filename"].to_pylist(), index["captions"].to_pylist()))
    assert captions == {"a.jpg": ["a red bike", "parked by a wall"], "b.jpg": ["one caption"]}
    assert dropped["no_caption"] == 1
    whole, _ = scan(tmp_path, {**entry, "caption_strategy": "textfile", "disable_multiline_split": True})
    assert whole["captions"].to_pylist()[0] == ["a red bike\n\nparked by a wall"]  # stripped at the ends only


def test_instance_prompt_keys_on_a_local_folder(tmp_path):
    entry = folder(tmp_path, {"a_red_bike": b"ignored", "b": None})
    prompt, _ = scan(tmp_path, {**entry, "caption_strategy": "instanceprompt", "instance_prompt": ["sks", "a sks"]})
    assert prompt["captions"].to_pylist() == [["sks", "a sks"], ["sks", "a sks"]]
    prepended, _ = scan(
        tmp_path, {**entry, "caption_strategy": "filename", "instance_prompt": "sks", "prepend_instance_prompt": True}
    )
    assert prepended["captions"].to_pylist() == [["sks a red bike"], ["sks b"]]
    only, _ = scan(
        tmp_path, {**entry, "caption_strategy": "textfile", "instance_prompt": "sks", "only_instance_prompt": True}
    )
    assert only["captions"].to_pylist() == [["sks"], ["sks"]]  # the image without a caption file is kept too


def test_max_num_samples_keeps_the_lowest_ranked_kept_rows_and_lists_the_others(tmp_path, hub_dataset):
    full, _ = scan(tmp_path, hub_entry())
    index, dropped = scan(tmp_path, hub_entry(max_num_samples=5))
    assert index.num_rows == 5 and dropped["max_num_samples"] == full.num_rows - 5
    ranks = dict(zip(full["filename"].to_pylist(), sample_ranks("photos", full["filename"])))
    chosen = sorted(ranks, key=ranks.get)[:5]
    assert sorted(index["filename"].to_pylist()) == sorted(chosen)
    assert index["row"].to_pylist() == sorted(index["row"].to_pylist())  # row order kept
    beyond = dropped.rows.filter(pa.compute.equal(dropped.rows["reason"], "max_num_samples"))
    assert sorted(beyond["filename"].to_pylist()) == sorted(set(ranks) - set(chosen))
    again, _ = scan(tmp_path, hub_entry(max_num_samples=5))
    assert again["filename"].to_pylist() == index["filename"].to_pylist()


def test_max_num_samples_subset_survives_a_growing_dataset(tmp_path):
    names = pa.array([f"{i}.jpg" for i in range(1000)])
    before = set(names.filter(pa.array(keep_mask("regularisation", names, 100))).to_pylist())
    grown = pa.array([f"{i}.jpg" for i in range(1100)])
    after = set(grown.filter(pa.array(keep_mask("regularisation", grown, 100))).to_pylist())
    newcomers = after - before
    assert len(after) == 100 and all(int(n.split(".")[0]) >= 1000 for n in newcomers)
    assert len(before - after) == len(newcomers) <= 100  # only displaced by lower-ranked new rows
    other_id = set(grown.filter(pa.array(keep_mask("other", grown, 100))).to_pylist())
    assert other_id != after  # seeded by the backend id, as SimpleTuner's subset


def test_max_num_samples_counts_after_the_filters(tmp_path):
    rows = [
        {"image": {"bytes": encode_image(64 + 8 * i, 64, seed=i), "path": None}, "caption": f"c {i}"} for i in range(6)
    ]
    rows[2]["caption"] = ""
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    (tmp_path / "data" / "small" / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(tmp_path / "data/small/data/train.parquet"))
    entry = {"id": "s", "type": "huggingface", "dataset_name": "data/small", "caption_column": "caption"}
    index, dropped = scan(tmp_path, {**entry, "max_num_samples": 5})
    assert index.num_rows == 5 and dropped["no_caption"] == 1 and dropped["max_num_samples"] == 0
