"""Find a configured column in an Arrow table: a top-level name or a dotted path into nested structs."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class MissingColumn(KeyError):
    """A configured column is not in the table; the message lists the columns that are."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message

    @classmethod
    def not_found(cls, path: str, schema: pa.Schema) -> "MissingColumn":
        """The error for `path`, listing every available column as a dotted path."""
        available = ", ".join(sorted(available_columns(schema))) or "(none)"
        return cls(f"column {path!r} not found; available: {available}", path)


class ColumnTypeError(TypeError):
    """A configured column holds values of a type it cannot have; `column` is its name when known here,
    `setting` the config key that names it (e.g. "image_column"), so a caller can add the backend and the name."""

    def __init__(self, message: str, column: str | None = None, setting: str | None = None):
        super().__init__(message)
        self.message = message
        self.column = column
        self.setting = setting

    def __str__(self) -> str:
        return self.message

    def in_backend(self, backend_id: str, column: str | None = None) -> "ColumnTypeError":
        """The same error with the backend id (and the column name, when only the caller knows it) in front."""
        column = self.column or column
        named = f", {self.setting or 'column'} {column!r}" if column and column != self.column else ""
        return ColumnTypeError(f"backend '{backend_id}'{named}: {self.message}", column, self.setting)


def available_columns(schema: pa.Schema) -> list[str]:
    """Every column as a dotted path, in schema order; struct columns are replaced by their fields."""
    paths: list[str] = []
    for schema_field in schema:
        _collect_paths(schema_field.name, schema_field.type, paths)
    return paths


def _collect_paths(prefix: str, dtype: pa.DataType, paths: list[str]) -> None:
    if pa.types.is_struct(dtype) and dtype.num_fields:
        for i in range(dtype.num_fields):
            child = dtype.field(i)
            _collect_paths(f"{prefix}.{child.name}", child.type, paths)
    else:
        paths.append(prefix)


def resolve_column(table: pa.Table, path: str) -> pa.ChunkedArray:
    """The column at `path`: a top-level name, else "a.b.c" walked through nested struct fields."""
    if path in table.column_names:
        return table.column(path)
    parts = path.split(".")
    for split_at in range(len(parts) - 1, 0, -1):  # the longest top-level name wins ("a.b" before "a")
        head = ".".join(parts[:split_at])
        if head in table.column_names:
            found = _walk_struct(table.column(head), parts[split_at:])
            if found is not None:
                return found
    raise MissingColumn.not_found(path, table.schema)


def _walk_struct(column: pa.ChunkedArray, parts: list[str]) -> pa.ChunkedArray | None:
    """The struct field named by `parts` (a field name may itself hold dots), or None."""
    if not parts:
        return column
    dtype = column.type
    if not pa.types.is_struct(dtype):
        return None
    for split_at in range(len(parts), 0, -1):
        index = dtype.get_field_index(".".join(parts[:split_at]))
        if index < 0:
            continue
        # pc.struct_field (unlike .field()) makes the child null wherever the parent struct is null
        child = pc.struct_field(column, [index])
        found = _walk_struct(child, parts[split_at:])
        if found is not None:
            return found
    return None


def flatten_with_rows(array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """The elements of a list (or the entries of a map) array, and the row of each; null rows give none."""
    if pa.types.is_map(array.type):
        entry = pa.struct([array.type.key_field, array.type.item_field])
        array = array.cast(pa.list_(entry))
    # Not pc.list_parent_indices: it counts elements stored under a null list, which list_flatten skips.
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy()
    rows = np.repeat(np.arange(len(array), dtype=np.int64), lengths)
    return rows, pc.list_flatten(array)


def top_level_columns(schema: pa.Schema, paths: list[str]) -> list[str]:
    """The top-level columns to read so that every path in `paths` (names or dotted paths) resolves; schema order."""
    names = set(schema.names)
    wanted: set[str] = set()
    for path in paths:
        if path in names:
            wanted.add(path)
            continue
        parts = path.split(".")
        heads = [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1) if ".".join(parts[:i]) in names]
        if not heads:
            raise MissingColumn.not_found(path, schema)
        wanted.add(heads[0])
    return [name for name in schema.names if name in wanted]
