"""Finding configured columns: top-level names, dotted paths into nested structs, and helpful misses."""

import pyarrow as pa
import pytest

from hf_assets.data.columns import MissingColumn, available_columns, flatten_with_rows, resolve_column

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def photo_table() -> pa.Table:
    """Rows shaped like a hub photo dataset: image struct, nested metadata, list and map columns."""
    metadata = pa.array(
        [
            {"caption": "a red barn at dusk", "score": 6.1, "source": {"site": "flickr", "license": "cc-by"}},
            None,
            {"caption": None, "score": 4.2, "source": None},
            {"caption": "  ", "score": None, "source": {"site": "unsplash", "license": None}},
        ]
    )
    return pa.table(
        {
            "image": pa.array([{"bytes": b"\xff\xd8", "path": None}] * 4, IMAGE),
            "metadata": metadata,
            "tags": pa.array([["barn", "dusk"], [], None, ["snow"]]),
            "exif": pa.array([[("Make", "Canon")], None, [], [("Model", "X100")]], pa.map_(pa.string(), pa.string())),
            "width": pa.array([1024, 640, None, 2048], pa.int32()),
        }
    )


def test_top_level_column_is_returned_as_is():
    table = photo_table()
    assert resolve_column(table, "width").to_pylist() == [1024, 640, None, 2048]


def test_dotted_path_walks_nested_structs():
    table = photo_table()
    assert resolve_column(table, "metadata.caption").to_pylist() == ["a red barn at dusk", None, None, "  "]
    assert resolve_column(table, "metadata.source.site").to_pylist() == ["flickr", None, None, "unsplash"]


def test_field_under_a_null_struct_is_null():
    table = photo_table()
    # row 1 has a null metadata struct, row 2 a null source struct
    assert resolve_column(table, "metadata.score").to_pylist() == [6.1, None, 4.2, None]
    assert resolve_column(table, "metadata.source.license").to_pylist() == ["cc-by", None, None, None]


def test_exact_top_level_column_with_a_dot_wins_over_the_nested_path():
    table = photo_table().append_column("metadata.caption", pa.array(["flat 0", "flat 1", "flat 2", "flat 3"]))
    assert resolve_column(table, "metadata.caption").to_pylist() == ["flat 0", "flat 1", "flat 2", "flat 3"]


def test_struct_field_whose_name_holds_a_dot_is_found():
    table = pa.table({"meta": pa.array([{"caption.en": "hello", "caption": "x"}])})
    assert resolve_column(table, "meta.caption.en").to_pylist() == ["hello"]


def test_whole_struct_column_is_returned_for_its_name():
    assert resolve_column(photo_table(), "metadata.source").type == pa.struct(
        [("site", pa.string()), ("license", pa.string())]
    )


def test_columns_split_over_several_chunks_resolve_to_all_rows():
    table = pa.concat_tables([photo_table(), photo_table()])
    assert resolve_column(table, "metadata.source.site").to_pylist() == ["flickr", None, None, "unsplash"] * 2


def test_missing_column_message_lists_available_dotted_paths():
    table = pa.table(
        {
            "image": pa.array([b"\xff\xd8"], pa.binary()),
            "metadata": pa.array([{"caption": "c", "score": 1.0}]),
            "width": pa.array([512]),
        }
    )
    with pytest.raises(MissingColumn) as caught:
        resolve_column(table, "metadata.captoin")
    assert str(caught.value) == (
        "column 'metadata.captoin' not found; available: image, metadata.caption, metadata.score, width"
    )
    assert caught.value.path == "metadata.captoin"


def test_missing_column_is_a_key_error():
    with pytest.raises(KeyError):
        resolve_column(photo_table(), "caption")


def test_path_through_a_non_struct_column_is_missing():
    with pytest.raises(MissingColumn, match="'tags.first' not found"):
        resolve_column(photo_table(), "tags.first")


def test_available_columns_flatten_structs_and_keep_list_and_map_columns_whole():
    assert available_columns(photo_table().schema) == [
        "image.bytes",
        "image.path",
        "metadata.caption",
        "metadata.score",
        "metadata.source.site",
        "metadata.source.license",
        "tags",
        "exif",
        "width",
    ]


def test_flatten_with_rows_skips_elements_stored_under_a_null_list():
    # A null list may still own a span of child values; pc.list_parent_indices would count them.
    offsets = pa.array([0, 2, 4, 5], pa.int32())
    values = pa.array(["a", "b", "hidden", "hidden", "c"])
    lists = pa.ListArray.from_arrays(offsets, values, mask=pa.array([False, True, False]))
    rows, flat = flatten_with_rows(lists)
    assert rows.tolist() == [0, 0, 2]
    assert flat.to_pylist() == ["a", "b", "c"]


def test_flatten_with_rows_gives_map_entries_with_their_rows():
    rows, entries = flatten_with_rows(photo_table().column("exif").combine_chunks())
    assert rows.tolist() == [0, 3]
    assert entries.to_pylist() == [{"key": "Make", "value": "Canon"}, {"key": "Model", "value": "X100"}]
