"""A `type: "aws"` backend: a folder of images in an S3 bucket (SimpleTuner's aws backend), read through s3fs.

One listing gives every image's name, size and ETag; caption files (`name.txt`) are fetched together, once per scan.
Image bytes are fetched only when a step reads the image column, a few rows per request, concurrently: the scan reads
each image's header from its bytes, the encoders the bytes they encode. Rows are named by their path under the
prefix. The split is cut into pieces where a file's name hashes to a boundary, so adding or changing a file changes
only its piece (its scan results and content hashes are redone; the other pieces' are reused).
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from hf_assets.cache.hashing import fingerprint_of
from hf_assets.config.schema import BackendConfig, S3Location
from hf_assets.data.caption_table import table_captions
from hf_assets.data.local_folder import CAPTION_LISTS, DETAIL_COLUMN, NAME_COLUMN, caption_variants, listing_captions
from hf_assets.data.sidecars import Caption, decode_caption
from hf_assets.data.split import BATCH_ROWS, IMAGE_EXTENSIONS, IMAGE_STRUCT, DatasetNotFound, RawSplit

IMAGE_COLUMN = "image"
PIECE_BOUNDARY = 256  # a piece ends after a file whose name hashes to 0 mod this: about this many files per piece
FETCH_ROWS = 16  # images per concurrent fetch task


def s3_filesystem(location: S3Location):
    """An s3fs filesystem for the location (credentials from the config, else s3fs's usual chain)."""
    try:
        import s3fs
    except ImportError:  # pragma: no cover - the s3 extra is installed with the tests
        raise DatasetNotFound("type \"aws\" reads S3 through s3fs: pip install 'hf_assets[s3]'") from None
    return s3fs.S3FileSystem(**location.storage_options())


@dataclass(frozen=True)
class S3FolderPiece:
    """Consecutive files of the listing; the image column is fetched from S3 when asked for, the rest is at hand."""

    table: pa.Table  # the listing's columns for these files (no image bytes)
    urls: tuple[str, ...]
    fs: object = field(repr=False, compare=False)
    key: str = ""
    start: int = 0
    record: dict = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def _images(self, rows: list[int]) -> pa.Array:
        urls = [self.urls[r] for r in rows]
        found = self.fs.cat(urls, on_error="return") if urls else {}
        blobs = [found.get(_path(u)) for u in urls]
        values = [{"bytes": b, "path": None} if isinstance(b, bytes) else None for b in blobs]  # None: unreadable
        return pa.array(values, IMAGE_STRUCT)

    def _with_images(self, table: pa.Table, rows: list[int], columns: list[str]) -> pa.Table:
        listed = [c for c in columns if c != IMAGE_COLUMN]
        out = table.select(listed)
        if IMAGE_COLUMN in columns:
            out = out.append_column(IMAGE_COLUMN, self._images(rows)).select(columns)
        return out

    def batches(self, columns: list[str], max_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
        step = min(max_rows, 512) if IMAGE_COLUMN in columns else max_rows
        for offset in range(0, self.num_rows, step):
            rows = list(range(offset, min(offset + step, self.num_rows)))
            yield self._with_images(self.table.slice(offset, len(rows)), rows, columns)

    def take(self, column: str, local_rows: list[int]) -> pa.Array:
        if column == IMAGE_COLUMN:
            return self._images(list(local_rows))
        return self.table.column(column).take(pa.array(local_rows, pa.int64())).combine_chunks()

    def take_tasks(self, column: str, local_rows: list[int]) -> list[tuple[list[int], object]]:
        """A task per few rows, so that a fetcher runs the S3 reads concurrently."""
        chunks = [list(local_rows[i : i + FETCH_ROWS]) for i in range(0, len(local_rows), FETCH_ROWS)]
        return [(rows, lambda rows=rows: self.take(column, rows)) for rows in chunks]


def scan_s3_folder(backend: BackendConfig) -> RawSplit:
    """List the images under the bucket's prefix (sorted, recursive) with their captions; no image is fetched."""
    location = backend.s3
    fs = s3_filesystem(location)
    root = _path(location.url)
    try:
        listing = fs.find(root, detail=True)
    except (FileNotFoundError, PermissionError, OSError) as exc:
        raise DatasetNotFound(
            f"backend '{backend.id}': cannot list {location.url} ({type(exc).__name__}: {exc})"
        ) from None
    infos = {path: info for path, info in listing.items() if info.get("type", "file") == "file"}
    images = sorted(p for p in infos if _suffix(p) in IMAGE_EXTENSIONS)
    if not images:
        raise DatasetNotFound(
            f"backend '{backend.id}': no images under {location.url}; check aws_bucket_name and aws_data_prefix"
        )
    names = [p[len(root) :].lstrip("/") for p in images]
    table_config = backend.captions.table
    if table_config is not None and not backend.captions.uses_instance_prompt_only:
        variants, problems = table_captions(names, table_config, lambda key: _read_key(fs, location, key))
    else:
        captions = _captions(backend, fs, images, infos)
        variants = [caption_variants(c, backend) for c in captions]
        problems = [c.problem for c in captions]
    identities = [f"{n}|{infos[p].get('size')}|{_etag(infos[p])}" for n, p in zip(names, images)]
    table = pa.table(
        {
            NAME_COLUMN: pa.array(names, pa.string()),
            "caption": pa.array(variants, CAPTION_LISTS),
            DETAIL_COLUMN: pa.array(problems, pa.string()),
        }
    )
    parts = [f"{i}|{c}" for i, c in zip(identities, table.column("caption").to_pylist())]
    pieces = _pieces(table, [f"s3://{p}" for p in images], parts, fs)
    schema = table.schema.append(pa.field(IMAGE_COLUMN, IMAGE_STRUCT))
    return RawSplit(
        backend.id,
        location.url,
        fingerprint_of(parts),
        tuple(pieces),
        schema,
        kind="s3_folder",
        image_column=IMAGE_COLUMN,
        name_column=NAME_COLUMN,
        captions=listing_captions(backend),
        detail_column=DETAIL_COLUMN,
    )


def _read_key(fs, location: S3Location, key: str) -> bytes:
    """An object of the bucket (the caption table), by its key."""
    try:
        return fs.cat(f"{location.bucket}/{key}")
    except (FileNotFoundError, PermissionError, OSError) as exc:
        raise DatasetNotFound(
            f"the caption table s3://{location.bucket}/{key} cannot be read ({type(exc).__name__})"
        ) from None


def _captions(backend: BackendConfig, fs, images: list[str], infos: dict) -> list[Caption]:
    """Each image's caption under the backend's caption_strategy; sidecars fetched in one concurrent call."""
    c = backend.captions
    if c.uses_instance_prompt_only:
        return [Caption(c.instance_prompts[0])] * len(images)
    if c.strategy == "filename":
        return [Caption(_stem(p).replace("_", " ")) for p in images]
    sidecars = {p: p.rsplit(".", 1)[0] + ".txt" for p in images}
    present = [s for s in sidecars.values() if s in infos]
    fetched = fs.cat(present, on_error="return") if present else {}
    out = []
    for path in images:
        data = fetched.get(sidecars[path])
        if not isinstance(data, bytes):
            out.append(Caption(None))
        else:
            out.append(decode_caption(data, c.encoding, name=f"caption file '{sidecars[path].rsplit('/', 1)[-1]}'"))
    return out


def _pieces(table: pa.Table, urls: list[str], parts: list[str], fs) -> list[S3FolderPiece]:
    """Cut where a name hashes to a boundary: an added file changes its own piece and no other."""
    ends = [i + 1 for i, name in enumerate(table.column(NAME_COLUMN).to_pylist()) if _boundary(name)]
    if not ends or ends[-1] != table.num_rows:
        ends.append(table.num_rows)
    pieces, start = [], 0
    for end in ends:
        key = "s3:" + fingerprint_of(parts[start:end])
        record = {"path": urls[start], "rows": end - start, "identity": key}
        pieces.append(S3FolderPiece(table.slice(start, end - start), tuple(urls[start:end]), fs, key, start, record))
        start = end
    return pieces


def _boundary(name: str) -> bool:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little") % PIECE_BOUNDARY == 0


def _path(url: str) -> str:
    return url.removeprefix("s3://")


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _etag(info: dict) -> str:
    return str(info.get("ETag") or info.get("etag") or info.get("LastModified") or "").strip('"')
