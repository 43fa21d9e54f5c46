"""What the registry knows about Avro: is a text a valid schema, its canonical text, compatibility.

Two parsers look at every schema: fastavro, which espstream's serde uses, and
Apache Avro's Python port, which is as strict as the Java parser Confluent's
registry runs (it refuses e.g. a record without fields or a name starting with
a digit, which fastavro lets through). A schema this registry accepts is
therefore one a production registry accepts too. Apache Avro's port of the
Java ``SchemaCompatibility`` checker decides compatibility, as in Confluent.
"""

import json
from functools import lru_cache

import avro.schema
import fastavro
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from .errors import invalid_schema

# Confluent's levels; the transitive ones compare with every version, the others with the latest.
COMPATIBILITY_LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)


def canonical_schema(text: str) -> str:
    """``text`` as compact JSON once both parsers accept it; else ``RegistryError`` 42201 with the reason.

    The canonical text is the schema's identity: the same schema sent with other
    whitespace gets the same id, and it is what the registry stores and returns.
    """
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise invalid_schema(f"not JSON: {error}") from None
    canonical = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    try:
        canonical.encode()
    except UnicodeEncodeError:
        raise invalid_schema("the schema holds a lone surrogate, which UTF-8 cannot carry") from None
    # Any exception from a parser fed untrusted input means the input is not a schema.
    try:
        fastavro.parse_schema(json.loads(canonical))
    except Exception as error:
        raise invalid_schema(f"{type(error).__name__}: {error}") from None
    try:
        _apache_avro(canonical)
    except Exception as error:
        raise invalid_schema(f"{type(error).__name__}: {error}") from None
    return canonical


def incompatibilities(new: str, old: str, level: str) -> list[str]:
    """Why ``new`` may not follow ``old`` under ``level`` (both canonical texts); empty if it may."""
    problems = []
    if level.startswith(("BACKWARD", "FULL")):
        problems += _reader_problems(new, old, "the new schema cannot read data written with it")
    if level.startswith(("FORWARD", "FULL")):
        problems += _reader_problems(old, new, "it cannot read data written with the new schema")
    return problems


def is_transitive(level: str) -> bool:
    return level.endswith("_TRANSITIVE")


def _reader_problems(reader: str, writer: str, direction: str) -> list[str]:
    result = ReaderWriterCompatibilityChecker().get_compatibility(_apache_avro(reader), _apache_avro(writer))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({kind.name.upper() for kind in result.incompatibilities}))
    where = ", ".join(sorted(result.locations - {"/"} or result.locations))
    return [f"{direction}: {kinds} at {where}: {'; '.join(sorted(result.messages))}"]


@lru_cache(maxsize=1024)
def _apache_avro(canonical: str) -> avro.schema.Schema:
    return avro.schema.parse(canonical)
