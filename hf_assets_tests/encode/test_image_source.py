"""Image sources: undecoded bytes or resolved paths per row, content hashes of those bytes, and their memo."""

import os

import numpy as np
import pyarrow as pa
import pytest

from hf_assets.cache.hashing import content_hash
from hf_assets.cache.tables import load_manifest, load_table, save_table
from hf_assets.data.row_fetch import WINDOW_ROWS
from hf_assets.data.sources import IMAGE_STRUCT, RawSplit
from hf_assets.encode import image_source
from hf_assets.encode.image_source import (
    HASH_TABLE,
    MEMO_FORMAT,
    content_hashes,
    iter_images,
    read_source,
)
from hf_assets_tests.conftest import photo_rows, write_hub_dataset
from hf_assets_tests.encode.test_image_media import prepare
from hf_assets_tests.imagegen import corrupt_bytes, encode_image

FORMATS = [(64, 48, "JPEG"), (40, 56, "PNG"), (50, 50, "WEBP"), (90, 30, "JPEG")]


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    """Real JPEG/PNG/WebP bytes, all different."""
    return [encode_image(w, h, fmt, seed=i) for i, (w, h, fmt) in enumerate(FORMATS)]


def split_of(column: pa.Array, fingerprint: str = "fp-1", base_dir=None, name: str = "image") -> RawSplit:
    """A RawSplit built by hand around one image column (plus an id column, as real splits have others)."""
    table = pa.table({"id": pa.array(range(len(column)), pa.int64()), name: column})
    return RawSplit.from_table("photos", table, "hand-built", fingerprint, base_dir=base_dir)


def structs(rows: list[tuple[bytes | None, str | None]]) -> pa.Array:
    return pa.array([{"bytes": b, "path": p} for b, p in rows], IMAGE_STRUCT)


def test_struct_column_yields_bytes_in_the_order_of_the_requested_rows(images):
    split = split_of(structs([(data, f"{i}.jpg") for i, data in enumerate(images)]))
    rows = np.array([2, 0, 3, 2, 1])
    assert list(iter_images(split, "image", rows)) == [images[r] for r in rows]


def test_struct_column_with_path_only_yields_the_path_under_the_split_base_dir(tmp_path, images):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(images[1])
    absolute = tmp_path / "elsewhere.webp"
    absolute.write_bytes(images[2])
    split = split_of(
        structs([(None, "imgs/a.png"), (None, str(absolute)), (images[0], "imgs/ignored.jpg")]), base_dir=tmp_path
    )
    sources = list(iter_images(split, "image", np.arange(3)))
    assert sources == [str(tmp_path / "imgs" / "a.png"), str(absolute), images[0]]  # bytes win over a path
    assert read_source(sources[0]) == images[1] and read_source(sources[1]) == images[2]


def test_relative_path_without_base_dir_is_kept_as_written(images):
    split = split_of(structs([(None, "imgs/a.png")]), base_dir=None)
    assert list(iter_images(split, "image", np.array([0]))) == ["imgs/a.png"]


def test_row_with_neither_bytes_nor_path_yields_none(images):
    split = split_of(structs([(images[0], None), (None, None), (b"", None), (b"", "")]))
    assert list(iter_images(split, "image", np.arange(4))) == [images[0], None, None, None]
    split = split_of(pa.array([{"bytes": images[0], "path": None}, None], IMAGE_STRUCT))
    assert list(iter_images(split, "image", np.arange(2))) == [images[0], None]


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_plain_binary_column_yields_its_bytes(images, kind):
    split = split_of(pa.array(images + [None], kind), name="jpg")
    assert list(iter_images(split, "jpg", np.array([3, 1, 4, 0]))) == [images[3], images[1], None, images[0]]


def test_a_column_the_scan_refuses_is_refused_here_too(tmp_path, images):
    from hf_assets.data.header_sizes import image_sizes

    (tmp_path / "x.jpg").write_bytes(images[0])
    column = pa.array(["x.jpg", None])
    with pytest.raises(TypeError, match="set image_column"):
        image_sizes(column, tmp_path)
    with pytest.raises(TypeError, match="set image_column"):
        list(iter_images(split_of(column, base_dir=tmp_path, name="file_name"), "file_name", np.arange(2)))


def test_rows_spanning_several_fetch_windows_keep_their_order(images):
    n = 2 * WINDOW_ROWS + 37
    column = pa.array([images[i % len(images)] for i in range(n)], pa.binary())
    rows = np.random.default_rng(0).permutation(n)
    split = split_of(column, name="jpg")
    assert list(iter_images(split, "jpg", rows)) == [images[r % len(images)] for r in rows]


def test_chunked_source_column_is_read_across_chunk_boundaries(images):
    chunked = pa.chunked_array([structs([(images[0], None), (images[1], None)]), structs([(images[2], None)])])
    table = pa.table({"image": chunked})
    split = RawSplit.from_table("photos", table, "hand-built", "fp-1")
    assert list(iter_images(split, "image", np.array([2, 1, 0]))) == [images[2], images[1], images[0]]


def test_content_hash_is_of_the_bytes_whether_stored_inline_or_at_a_path(tmp_path, images):
    (tmp_path / "copy.png").write_bytes(images[1])
    split = split_of(
        structs(
            [(images[0], None), (images[1], None), (None, "copy.png"), (images[0], "other.jpg"), (images[2], None)]
        ),
        base_dir=tmp_path,
    )
    hashes = content_hashes(split, "image", np.arange(5)).to_pylist()
    assert hashes[1] == hashes[2] == content_hash(images[1])  # equal bytes, inline or at a path
    assert hashes[0] == hashes[3] == content_hash(images[0])
    assert len({hashes[0], hashes[1], hashes[4]}) == 3  # different bytes, different hashes
    assert all(len(h) == 32 for h in hashes)


def test_one_changed_byte_changes_the_content_hash(images):
    changed = bytearray(images[0])
    changed[-10] ^= 0xFF
    split = split_of(structs([(images[0], None), (bytes(changed), None)]))
    a, b = content_hashes(split, "image", np.arange(2)).to_pylist()
    assert a != b


def test_unreadable_or_missing_sources_hash_to_empty(tmp_path, images):
    (tmp_path / "folder.jpg").mkdir()  # a directory where a file should be: cannot be read
    (tmp_path / "empty.jpg").write_bytes(b"")
    split = split_of(
        structs(
            [
                (None, "missing.jpg"),
                (None, "folder.jpg"),
                (None, "empty.jpg"),
                (None, None),
                (corrupt_bytes(3), None),
                (images[0], None),
            ]
        ),
        base_dir=tmp_path,
    )
    hashes = content_hashes(split, "image", np.arange(6)).to_pylist()
    assert hashes[:4] == ["", "", "", ""]
    # Corrupt bytes are still bytes: they hash; decoding them fails later, at encode time.
    assert hashes[4] == content_hash(corrupt_bytes(3)) and hashes[5] == content_hash(images[0])


def test_content_hashes_follow_the_requested_row_order_and_repeats(images):
    split = split_of(structs([(data, None) for data in images]))
    rows = np.array([3, 3, 0, 2])
    assert content_hashes(split, "image", rows).to_pylist() == [content_hash(images[r]) for r in rows]
    assert content_hashes(split, "image", np.array([], dtype=np.int64)).to_pylist() == []


@pytest.fixture
def counted(monkeypatch):
    """Count the hashes actually computed (not taken from the memo)."""
    calls = []

    def counting(data):
        calls.append(bytes(data))
        return content_hash(data)

    monkeypatch.setattr(image_source, "content_hash", counting)
    return calls


def test_memo_is_reused_while_the_split_fingerprint_is_unchanged(tmp_path, images, counted):
    memo = tmp_path / "metadata"
    split = split_of(structs([(data, None) for data in images]), fingerprint="fp-1")
    first = content_hashes(split, "image", np.arange(4), memo)
    assert len(counted) == 4
    assert load_manifest(memo, HASH_TABLE)["fingerprint"] == "fp-1"
    assert load_table(memo, HASH_TABLE).num_rows == 4

    again = content_hashes(split, "image", np.array([3, 1, 0, 2]), memo)
    assert len(counted) == 4  # nothing recomputed
    assert again.to_pylist() == [first[i].as_py() for i in (3, 1, 0, 2)]


def test_memo_computes_only_the_rows_it_lacks(tmp_path, images, counted):
    memo = tmp_path / "metadata"
    split = split_of(structs([(data, None) for data in images]), fingerprint="fp-1")
    content_hashes(split, "image", np.array([0, 1]), memo)
    assert len(counted) == 2
    hashes = content_hashes(split, "image", np.arange(4), memo)
    assert counted[2:] == [images[2], images[3]]
    assert hashes.to_pylist() == [content_hash(d) for d in images]
    assert sorted(load_table(memo, HASH_TABLE).column("row").to_pylist()) == [0, 1, 2, 3]


def test_memo_is_not_reused_once_the_split_fingerprint_changes(tmp_path, images, counted):
    memo = tmp_path / "metadata"
    old = split_of(structs([(data, None) for data in images]), fingerprint="fp-1")
    before = content_hashes(old, "image", np.arange(4), memo).to_pylist()
    # Same row numbers, new data (row 0 replaced): the split's fingerprint changed with it.
    new = split_of(structs([(images[3], None)] + [(data, None) for data in images[1:]]), fingerprint="fp-2")
    after = content_hashes(new, "image", np.arange(4), memo).to_pylist()
    assert len(counted) == 8  # everything recomputed
    assert after[0] == content_hash(images[3]) != before[0]
    assert after[1:] == before[1:]
    assert load_manifest(memo, HASH_TABLE)["fingerprint"] == "fp-2"
    # Back on the new fingerprint's memo: no recomputation.
    content_hashes(new, "image", np.arange(4), memo)
    assert len(counted) == 8


def test_without_a_memo_dir_every_call_hashes(images, counted):
    split = split_of(structs([(data, None) for data in images]))
    content_hashes(split, "image", np.arange(4))
    content_hashes(split, "image", np.arange(4))
    assert len(counted) == 8


def test_changed_file_behind_an_unchanged_path_is_rehashed(tmp_path, monkeypatch):
    # A Hub/Parquet split storing image *paths* keeps its fingerprint when a file behind a path changes:
    # the memo must notice from the file itself, or the latent cache would serve the old picture's latent.
    folder = tmp_path / "data" / "photos"
    (folder / "images").mkdir(parents=True)
    rows = photo_rows(4, corrupt=())
    for i, row in enumerate(rows):
        (folder / "images" / f"{i}.jpg").write_bytes(row["image"]["bytes"])
        row["image"] = {"bytes": None, "path": f"images/{i}.jpg"}  # relative to the dataset folder
    monkeypatch.chdir(folder)  # datasets sizes path-only images relative to the working directory
    write_hub_dataset(folder, rows)
    monkeypatch.chdir(tmp_path)
    backend, split, _ = prepare(tmp_path)
    assert split.table.column("image")[0].as_py() == {"bytes": None, "path": "images/0.jpg"}
    before = content_hashes(split, "image", np.arange(4), backend.metadata_dir).to_pylist()

    replacement = encode_image(640, 480, "JPEG", seed=99)
    (folder / "images" / "0.jpg").write_bytes(replacement)  # same path, other picture
    backend, reopened, _ = prepare(tmp_path)
    assert reopened.fingerprint == split.fingerprint  # the split itself did not change
    after = content_hashes(reopened, "image", np.arange(4), backend.metadata_dir).to_pylist()
    assert after[1:] == before[1:]
    assert after[0] == content_hash(replacement) != before[0]


def path_split(folder, images, fingerprint="fp-1") -> RawSplit:
    """A split whose image column holds only relative paths to files under `folder`."""
    folder.mkdir(exist_ok=True)
    for i, data in enumerate(images):
        (folder / f"{i}.img").write_bytes(data)
    return split_of(structs([(None, f"{i}.img") for i in range(len(images))]), fingerprint, base_dir=folder)


def test_memo_of_path_rows_rehashes_only_files_whose_size_or_mtime_changed(tmp_path, images, counted):
    memo = tmp_path / "metadata"
    split = path_split(tmp_path / "imgs", images)
    first = content_hashes(split, "image", np.arange(4), memo).to_pylist()
    assert len(counted) == 4
    assert content_hashes(split, "image", np.arange(4), memo).to_pylist() == first
    assert len(counted) == 4  # every file unchanged: nothing rehashed

    bigger = encode_image(120, 90, "PNG", seed=11)
    (tmp_path / "imgs" / "1.img").write_bytes(bigger)  # new size
    same_size = bytearray(images[2])
    same_size[-20] ^= 0xFF
    path = tmp_path / "imgs" / "2.img"
    stat = path.stat()
    path.write_bytes(bytes(same_size))  # same size, newer mtime
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = content_hashes(split, "image", np.arange(4), memo).to_pylist()
    assert counted[4:] == [bigger, bytes(same_size)]
    assert after == [first[0], content_hash(bigger), content_hash(bytes(same_size)), first[3]]


def test_missing_file_is_rechecked_and_hashed_once_it_appears(tmp_path, images, counted):
    memo = tmp_path / "metadata"
    split = path_split(tmp_path / "imgs", images[:2])
    (tmp_path / "imgs" / "1.img").unlink()
    assert content_hashes(split, "image", np.arange(2), memo).to_pylist() == [content_hash(images[0]), ""]
    (tmp_path / "imgs" / "1.img").write_bytes(images[1])
    assert content_hashes(split, "image", np.arange(2), memo).to_pylist() == [
        content_hash(images[0]),
        content_hash(images[1]),
    ]
    assert counted == [images[0], images[1]]


def test_memo_in_an_older_format_is_rebuilt(tmp_path, images, counted):
    memo = tmp_path / "metadata"
    split = split_of(structs([(data, None) for data in images]), fingerprint="fp-1")
    # A format-1 memo (no file stamps) with the same fingerprint, holding wrong hashes.
    stale = pa.table({"row": pa.array(range(4), pa.int64()), "content_hash": pa.array(["0" * 32] * 4)})
    save_table(memo, HASH_TABLE, stale, {"fingerprint": "fp-1"})
    hashes = content_hashes(split, "image", np.arange(4), memo).to_pylist()
    assert hashes == [content_hash(d) for d in images] and len(counted) == 4
    assert load_manifest(memo, HASH_TABLE)["memo_format"] == MEMO_FORMAT
    content_hashes(split, "image", np.arange(4), memo)
    assert len(counted) == 4


def test_appending_a_parquet_shard_hashes_only_the_new_shards_images(tmp_path, counted):
    from hf_assets.config import parse_config
    from hf_assets.data.sources import open_split

    rows = photo_rows(30, corrupt=())
    folder = tmp_path / "data" / "photos"
    write_hub_dataset(folder, rows[:24])
    entry = {"id": "photos", "type": "huggingface", "dataset_name": "data/photos", "caption_column": "caption"}
    backend = parse_config([entry], tmp_path / "dataloader.json").backends[0]
    memo = tmp_path / "memo"
    first = content_hashes(open_split(backend), "image", np.arange(24), memo).to_pylist()
    assert len(counted) == 24

    write_hub_dataset(tmp_path / "extra", rows[24:], shards=1)
    (tmp_path / "extra" / "data" / "train-00000-of-00001.parquet").rename(
        folder / "data" / "train-00002-of-00002.parquet"
    )
    grown = open_split(backend)
    hashes = content_hashes(grown, "image", np.arange(30), memo).to_pylist()

    assert len(counted) == 24 + 6  # only the appended shard's images were read and hashed
    assert hashes[:24] == first and hashes[24:] == [content_hash(r["image"]["bytes"]) for r in rows[24:]]
