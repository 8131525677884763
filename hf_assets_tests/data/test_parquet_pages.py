"""Reading chosen rows of a Parquet column page by page gives pyarrow's values and reads only those pages."""

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_assets.data.page_rows import read_rows
from hf_assets.data.parquet_pages import ByteRanges, chunk_pages, read_footer
from hf_assets_tests.imagegen import encode_image

ROWS, GROUP_ROWS = 300, 150
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def table() -> pa.Table:
    """Real JPEGs of varied sizes, some null bytes (a path instead), some null images, and a plain binary column."""
    images, raw = [], []
    for i in range(ROWS):
        data = None if i % 17 == 5 else encode_image(32 + (i * 7) % 48, 24 + (i * 5) % 40, seed=i)
        raw.append(data)
        images.append(None if i % 41 == 7 else {"bytes": data, "path": None if data else f"images/{i}.jpg"})
    return pa.table({"image": pa.array(images, IMAGE), "raw": pa.array(raw, pa.binary()), "n": range(ROWS)})


def write(path, *, compression, version, dictionary, index, large=False):
    # small pages (write_batch_size lets pyarrow close a page every few values) and a dictionary that falls back;
    # large: pyarrow's default page sizes, so each chunk is one page (or one dictionary page), read value by value
    pq.write_table(
        table(),
        path,
        compression=compression,
        data_page_version=version,
        use_dictionary=dictionary,
        write_page_index=index,
        data_page_size=1 << 20 if large else 4096,
        dictionary_pagesize_limit=1 << 20 if large else 16384,
        write_batch_size=1024 if large else 8,
        row_group_size=GROUP_ROWS,
    )
    return path


@pytest.mark.parametrize("compression", ["none", "snappy", "zstd"])
@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("dictionary", [True, False])
@pytest.mark.parametrize("index", [True, False])
@pytest.mark.parametrize("large", [False, True], ids=["small pages", "one page"])
def test_values_at_chosen_rows_equal_pyarrows(tmp_path, compression, version, dictionary, index, large):
    path = write(
        tmp_path / "t.parquet",
        compression=compression,
        version=version,
        dictionary=dictionary,
        index=index,
        large=large,
    )
    file = pq.ParquetFile(path)
    ranges = ByteRanges(None, str(path))
    footer = read_footer(ranges)
    rng = random.Random(0)
    for leaf in range(file.metadata.num_columns):
        column = file.schema.column(leaf)
        if column.physical_type != "BYTE_ARRAY":
            continue
        for group in range(file.metadata.num_row_groups):
            chunk = chunk_pages(ranges, footer, group, leaf, column.path, column.max_definition_level, 0)
            assert chunk.from_index is index
            rows = rng.sample(range(GROUP_ROWS), 25)
            whole = file.read_row_group(group, columns=[column.path.split(".")[0]]).column(0).combine_chunks()
            if "." in column.path:
                whole = whole.field(column.path.split(".")[1])
            expected = [whole[r].as_py() for r in rows]
            expected = [e.encode() if isinstance(e, str) else e for e in expected]
            assert read_rows(ranges, chunk, rows) == expected


def test_one_row_reads_its_page_and_the_dictionary_only(tmp_path):
    path = write(tmp_path / "t.parquet", compression="snappy", version="1.0", dictionary=True, index=True)
    ranges = ByteRanges(None, str(path))
    footer = read_footer(ranges)
    file = pq.ParquetFile(path)
    leaf = [file.schema.column(i).path for i in range(file.metadata.num_columns)].index("image.bytes")
    chunk = chunk_pages(ranges, footer, 1, leaf, "image.bytes", 2, 0)
    assert len(chunk.offsets) > 10 and chunk.dictionary is not None
    for row, dictionary_page in ((3, True), (GROUP_ROWS - 1, False)):  # the first pages use the dictionary
        before = ranges.bytes_read
        page = chunk.page_of(row)
        read_rows(ranges, chunk, [row])
        expected = chunk.sizes[page] + (chunk.dictionary[1] if dictionary_page else 0)
        assert ranges.bytes_read - before == expected
    chunk_bytes = file.metadata.row_group(1).column(leaf).total_compressed_size
    assert chunk.sizes[chunk.page_of(GROUP_ROWS - 1)] < chunk_bytes / 10


def test_rows_on_one_page_read_it_once(tmp_path):
    path = write(tmp_path / "t.parquet", compression="none", version="2.0", dictionary=False, index=False)
    ranges = ByteRanges(None, str(path))
    footer = read_footer(ranges)
    chunk = chunk_pages(ranges, footer, 0, 0, "image.bytes", 2, 0)
    first, end = chunk.page_rows(4)
    before = ranges.bytes_read
    read_rows(ranges, chunk, list(range(first, end)) * 2)
    assert ranges.bytes_read - before == chunk.sizes[4]


@pytest.mark.parametrize("compression", ["none", "snappy"])
@pytest.mark.parametrize("dictionary", [True, False])
def test_a_few_rows_of_a_one_page_chunk_cost_their_own_bytes(tmp_path, compression, dictionary):
    path = write(
        tmp_path / "t.parquet", compression=compression, version="1.0", dictionary=dictionary, index=False, large=True
    )
    ranges = ByteRanges(None, str(path))
    footer = read_footer(ranges)
    file = pq.ParquetFile(path)
    leaf = [file.schema.column(i).path for i in range(file.metadata.num_columns)].index("raw")
    chunk = chunk_pages(ranges, footer, 1, leaf, "raw", 1, 0)
    assert len(chunk.offsets) == 1 and (chunk.dictionary is not None) is dictionary
    rows = [3, 40, 41, 149]
    expected = table().column("raw").to_pylist()[GROUP_ROWS:]
    before = ranges.bytes_read
    assert read_rows(ranges, chunk, rows) == [expected[r] for r in rows]
    wanted = sum(len(expected[r] or b"") for r in rows)
    chunk_bytes = file.metadata.row_group(1).column(leaf).total_compressed_size
    assert ranges.bytes_read - before <= wanted + (12 << 10) < chunk_bytes / 4
