"""Export files other than Avro: Parquet (pyarrow, the ``parquet`` extra) and JSON lines.

DuckDB and Polars read Parquet with nothing more installed, and Avro only
through an extension (DuckDB) or not nested (Polars). These files are made from
the decoded events, so they cost a decode per event that Avro files do not.

Types follow the writer schema: strings, numbers and booleans as themselves,
enums as strings, ``timestamp-micros`` as UTC timestamps, arrays as lists,
records as structs, maps as maps. A union of more than one type besides null
(``metadata``'s values: null, boolean, long, double, string or a JSON text) has
no Parquet column type that every reader reads, so its values are JSON text:
``json.loads`` gives the value back (a ``JsonText`` value is its JSON as is).

Like the Avro files, a file's bytes depend only on its records (no write time
in them): running the same range again writes the same files.
"""

import io
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader

from .dates import WriterSchema

FORMATS = ("avro", "parquet", "jsonl")
# Rows per Parquet row group: a group is held in memory until written.
ROW_GROUP_ROWS = 65_536
PARQUET_COMPRESSION = "zstd"

Convert = Callable[[Any], Any] | None


def arrow_type(schema: Any) -> "tuple[Any, Convert]":
    """The Arrow type of an Avro (parsed) schema, and how to convert a decoded value when it is not as is."""
    import pyarrow as pa

    if isinstance(schema, list):  # a union
        branches = [branch for branch in schema if branch != "null"]
        if len(branches) == 1:
            return arrow_type(branches[0])
        return pa.string(), _json_text
    if isinstance(schema, dict):
        kind = schema["type"]
        if schema.get("logicalType") == "timestamp-micros":
            return pa.timestamp("us", tz="UTC"), None
        if kind == "enum":
            return pa.string(), None
        if kind == "array":
            items, convert = arrow_type(schema["items"])
            return pa.list_(items), None if convert is None else lambda values: [convert(v) for v in values]
        if kind == "map":
            values, convert = arrow_type(schema["values"])
            return pa.map_(pa.string(), values), (
                (lambda mapping: list(mapping.items())) if convert is None
                else lambda mapping: [(key, convert(value)) for key, value in mapping.items()]
            )
        if kind == "record":
            fields = [(field["name"], *arrow_type(field["type"])) for field in schema["fields"]]
            struct = pa.struct([pa.field(name, type_) for name, type_, _ in fields])
            converts = [(name, convert) for name, _, convert in fields if convert is not None]
            if not converts:
                return struct, None
            return struct, lambda record: {**record, **{name: convert(record[name]) for name, convert in converts if record[name] is not None}}
        return arrow_type(kind)
    primitive = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "boolean": pa.bool_(),
                 "double": pa.float64(), "float": pa.float32(), "bytes": pa.binary(), "null": pa.null()}
    return primitive[schema], None


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"json"}:  # JsonText: already JSON
        return value["json"]
    return json.dumps(value, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(f"{type(value).__name__} is not JSON")


class DecodedFile:
    """A Parquet or JSON-lines file of decoded events being written at ``path``; ``finish()`` completes it."""

    def __init__(self, path: Path, schema: WriterSchema, file_format: str):
        self.parsed = parse_schema(schema.schema)
        self.format = file_format
        self._rows: list[dict[str, Any]] = []
        if file_format == "jsonl":
            self._file = open(path, "wb")
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow, self._convert = arrow_type(schema.schema)
        self._schema = pa.schema(list(arrow))
        self._writer = pq.ParquetWriter(str(path), self._schema, compression=PARQUET_COMPRESSION)

    def add(self, body: bytes) -> None:
        """``body``: an event's Avro encoding (no framing)."""
        record = schemaless_reader(io.BytesIO(body), self.parsed, None)
        if self.format == "jsonl":
            self._file.write(json.dumps(record, ensure_ascii=False, default=_json_default).encode() + b"\n")
            return
        self._rows.append(self._convert(record) if self._convert is not None else record)
        if len(self._rows) >= ROW_GROUP_ROWS:
            self._write_rows()

    def _write_rows(self) -> None:
        import pyarrow as pa

        self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
        self._rows = []

    def finish(self) -> None:
        """Write what is pending and close the file."""
        if self.format == "jsonl":
            self._file.close()
            return
        if self._rows:
            self._write_rows()
        self._writer.close()

    def discard(self) -> None:
        if self.format == "jsonl":
            self._file.close()
        else:
            self._writer.close()
