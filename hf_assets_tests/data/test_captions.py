"""Caption variants per row: configured columns in order, fallback, description, empties skipped."""

import numpy as np
import pyarrow as pa
import pytest

from hf_assets.config.schema import CaptionConfig
from hf_assets.data.captions import extract_captions, first_caption
from hf_assets.data.columns import MissingColumn

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def art_table() -> pa.Table:
    """Six rows like a hub art dataset: nested captions, list captions, fallback, struct and map descriptions."""
    return pa.table(
        {
            "image": pa.array([{"bytes": b"\x89PNG", "path": None}] * 6, IMAGE),
            "metadata": pa.array(
                [
                    {"caption": "  A watercolor fox\n", "lang": "en"},
                    {"caption": "", "lang": "en"},
                    None,
                    {"caption": None, "lang": "de"},
                    {"caption": "\t ", "lang": "en"},
                    {"caption": "Oil portrait", "lang": "en"},
                ]
            ),
            "tags": pa.array([["fox", " ", "watercolor"], None, [], [None, "  "], ["still life", ""], None]),
            "title": pa.array(["Fox", "Harbour at noon", None, "", "   ", "Portrait"]),
            "description": pa.array(
                [
                    {"summary": "a fox", "medium": "watercolor", "year": 1901},
                    {"summary": " harbour ", "medium": None, "year": None},
                    {"summary": "  ", "medium": "charcoal sketch", "year": 1850},
                    None,
                    {"summary": None, "medium": "", "year": 2001},
                    {"summary": "portrait", "medium": "oil", "year": 1700},
                ]
            ),
            "width": pa.array([1024, 768, 512, 2048, 640, 896], pa.int32()),
        }
    )


def captions_of(table: pa.Table, **cfg) -> list:
    return extract_captions(table, CaptionConfig(**cfg)).to_pylist()


def test_string_column_gives_one_stripped_variant_per_row():
    assert captions_of(art_table(), columns=("title",)) == [["Fox"], ["Harbour at noon"], [], [], [], ["Portrait"]]


def test_list_column_gives_one_variant_per_non_empty_element_in_order():
    assert captions_of(art_table(), columns=("tags",)) == [["fox", "watercolor"], [], [], [], ["still life"], []]


def test_nested_path_reads_the_struct_field():
    assert captions_of(art_table(), columns=("metadata.caption",)) == [
        ["A watercolor fox"],
        [],
        [],
        [],
        [],
        ["Oil portrait"],
    ]


def test_several_columns_give_variants_in_config_order():
    assert captions_of(art_table(), columns=("title", "metadata.caption", "tags"))[0] == [
        "Fox",
        "A watercolor fox",
        "fox",
        "watercolor",
    ]
    assert captions_of(art_table(), columns=("tags", "title"))[0] == ["fox", "watercolor", "Fox"]


def test_null_empty_and_whitespace_variants_are_skipped():
    captions = captions_of(art_table(), columns=("metadata.caption", "tags"))
    assert captions[1:5] == [[], [], [], ["still life"]]


def test_fallback_column_is_used_only_for_rows_without_a_primary_variant():
    captions = captions_of(art_table(), columns=("metadata.caption",), fallback_column="title")
    assert captions == [["A watercolor fox"], ["Harbour at noon"], [], [], [], ["Oil portrait"]]


def test_description_struct_joins_non_empty_string_fields_in_field_order():
    captions = captions_of(
        art_table(), columns=("metadata.caption",), fallback_column="title", description_column="description"
    )
    # rows 2-4 have neither caption nor title; row 3's description is null, row 4's strings are empty
    assert captions[2:5] == [["charcoal sketch"], [], []]
    assert captions_of(art_table(), description_column="description")[0] == ["a fox watercolor"]


def test_description_string_column_is_one_variant():
    captions = captions_of(art_table(), columns=("tags",), description_column="title")
    assert captions == [["fox", "watercolor"], ["Harbour at noon"], [], [], ["still life"], ["Portrait"]]


def test_description_map_joins_non_empty_string_values_in_entry_order():
    table = pa.table(
        {
            "caption": pa.array([None, "given", "", None]),
            "extra": pa.array(
                [[("subject", " cat "), ("style", "pixel art"), ("note", "")], [("subject", "dog")], None, []],
                pa.map_(pa.string(), pa.string()),
            ),
        }
    )
    assert captions_of(table, columns=("caption",), description_column="extra") == [
        ["cat pixel art"],
        ["given"],
        [],
        [],
    ]


def test_row_without_any_caption_gets_an_empty_list_not_null():
    captions = extract_captions(art_table(), CaptionConfig(columns=("title",)))
    assert captions.type == pa.list_(pa.string())
    assert captions.null_count == 0
    assert captions[2].as_py() == []


def test_result_has_one_list_per_row_even_when_no_row_has_a_caption():
    table = pa.table({"caption": pa.array([None, " ", ""], pa.string())})
    assert captions_of(table, columns=("caption",)) == [[], [], []]


def test_instance_prompt_strategy_gives_every_row_the_prompt():
    assert (
        captions_of(art_table(), strategy="instanceprompt", instance_prompt="a photo of sks fox")
        == [["a photo of sks fox"]] * 6
    )


def test_strategies_read_elsewhere_are_refused():
    with pytest.raises(ValueError, match="'textfile'"):
        extract_captions(art_table(), CaptionConfig(strategy="textfile"))


def test_missing_fallback_column_raises_even_when_no_row_needs_it():
    with pytest.raises(MissingColumn, match="'alt_text' not found; available: .*metadata.caption"):
        extract_captions(art_table(), CaptionConfig(columns=("title",), fallback_column="alt_text"))


def test_non_text_caption_column_is_refused_with_its_type():
    with pytest.raises(TypeError, match="'width' has type int32"):
        extract_captions(art_table(), CaptionConfig(columns=("width",)))


def test_dictionary_encoded_and_large_string_columns_are_read_as_text():
    table = pa.table(
        {
            "style": pa.array(["ink", " ", None, "oil"]).dictionary_encode(),
            "alt": pa.array([["a", "b"], None, [" c "], []], pa.large_list(pa.large_string())),
        }
    )
    assert captions_of(table, columns=("style", "alt")) == [["ink", "a", "b"], [], ["c"], ["oil"]]


def test_columns_in_several_chunks_and_sliced_tables_keep_rows_aligned():
    table = pa.concat_tables([art_table(), art_table()]).slice(3, 6)
    assert captions_of(table, columns=("metadata.caption",), fallback_column="title") == [
        [],
        [],
        ["Oil portrait"],
        ["A watercolor fox"],
        ["Harbour at noon"],
        [],
    ]


def test_first_caption_is_the_first_variant_or_null():
    captions = extract_captions(art_table(), CaptionConfig(columns=("tags", "title")))
    assert first_caption(captions).to_pylist() == ["fox", "Harbour at noon", None, None, "still life", "Portrait"]


def test_first_caption_of_a_slice_reads_the_slice_rows():
    captions = extract_captions(art_table(), CaptionConfig(columns=("title",))).slice(1, 3)
    assert first_caption(captions).to_pylist() == ["Harbour at noon", None, None]


# ---- a 200k-row table checked against a per-row reference -----------------------------------------

WORDS = np.array(["cat", "dog", "  harbour ", "", "oil on canvas", " ", "snowy peak", "portrait\n"], dtype=object)


def generated_table(num_rows: int, seed: int = 7) -> pa.Table:
    """Many rows with every caption shape at realistic rates: nulls, whitespace, empty lists, null structs."""
    rng = np.random.default_rng(seed)
    text = WORDS[rng.integers(0, len(WORDS), num_rows)]
    text_null = rng.random(num_rows) < 0.2
    meta_null = rng.random(num_rows) < 0.1
    caption = pa.array(text, pa.string(), mask=text_null)
    metadata = pa.StructArray.from_arrays(
        [caption, pa.array(rng.random(num_rows))], names=["caption", "score"], mask=pa.array(meta_null)
    )
    lengths = rng.integers(0, 4, num_rows)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    tags = pa.ListArray.from_arrays(
        pa.array(offsets),
        pa.array(WORDS[rng.integers(0, len(WORDS), offsets[-1])], pa.string()),
        mask=pa.array(rng.random(num_rows) < 0.1),
    )
    fallback = pa.array(WORDS[rng.integers(0, len(WORDS), num_rows)], pa.string(), mask=rng.random(num_rows) < 0.5)
    return pa.table({"metadata": metadata, "tags": tags, "alt": fallback})


def reference_captions(row: dict) -> list[str]:
    """The rules written per row, the slow obvious way."""
    meta = row["metadata"] or {}
    primary = [meta.get("caption")] + list(row["tags"] or [])
    variants = [v.strip() for v in primary if v is not None and v.strip()]
    if not variants and row["alt"] is not None and row["alt"].strip():
        variants = [row["alt"].strip()]
    return variants


def test_two_hundred_thousand_rows_match_the_per_row_reference():
    table = generated_table(200_000)
    captions = extract_captions(table, CaptionConfig(columns=("metadata.caption", "tags"), fallback_column="alt"))
    assert len(captions) == table.num_rows
    sample = np.random.default_rng(1).choice(table.num_rows, 3_000, replace=False)
    rows = table.take(pa.array(sample)).to_pylist()
    expected = [reference_captions(row) for row in rows]
    assert captions.take(pa.array(sample)).to_pylist() == expected
    assert any(len(c) >= 3 for c in expected) and any(c == [] for c in expected)
