"""The registry's state in memory, and the records in the Kafka topic it is rebuilt from.

Record format, modeled on Confluent's ``_schemas`` topic (JSON key and value):

- a schema version: key ``{"keytype": "SCHEMA", "subject": s, "version": v, "magic": 1}``,
  value ``{"subject": s, "version": v, "id": id, "schema": canonical text, "deleted": false}``;
- a compatibility level: key ``{"keytype": "CONFIG", "subject": s or null, "magic": 0}``,
  value ``{"compatibilityLevel": level}`` (``null`` subject: the global level).

Keys are unique per subject version and per config, so the topic may be compacted.
"""

import json
import logging
import uuid
from dataclasses import dataclass

log = logging.getLogger("espstream.registry")

# A fixed namespace makes a schema's guid a function of its canonical text, so it survives restarts unstored.
_GUID_NAMESPACE = uuid.UUID("5b0f7f5e-4a3c-4f4e-9d57-2f8e3c1f0a11")


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    subject: str
    version: int
    schema_id: int
    schema: str  # canonical text

    @property
    def guid(self) -> str:
        return schema_guid(self.schema)


def schema_guid(canonical: str) -> str:
    return str(uuid.uuid5(_GUID_NAMESPACE, canonical))


class RegistryState:
    """Schemas by id, subjects' versions and compatibility levels. Not thread-safe: the caller locks."""

    def __init__(self) -> None:
        self._schema_by_id: dict[int, str] = {}
        self._id_by_schema: dict[str, int] = {}
        self._id_by_guid: dict[str, int] = {}
        self._versions: dict[str, dict[int, int]] = {}  # subject -> version -> schema id
        self._compatibility: dict[str | None, str] = {}  # None: the global level

    # Reading

    def subjects(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, subject: str) -> list[int] | None:
        found = self._versions.get(subject)
        return None if found is None else sorted(found)

    def version(self, subject: str, version: int) -> SubjectVersion | None:
        schema_id = self._versions.get(subject, {}).get(version)
        if schema_id is None:
            return None
        return SubjectVersion(subject, version, schema_id, self._schema_by_id[schema_id])

    def schema(self, schema_id: int) -> str | None:
        return self._schema_by_id.get(schema_id)

    def schema_id(self, canonical: str) -> int | None:
        return self._id_by_schema.get(canonical)

    def id_of_guid(self, guid: str) -> int | None:
        return self._id_by_guid.get(guid)

    def uses_of(self, schema_id: int) -> list[tuple[str, int]]:
        """(subject, version) pairs registered with ``schema_id``."""
        return [
            (subject, version)
            for subject in sorted(self._versions)
            for version, used in sorted(self._versions[subject].items())
            if used == schema_id
        ]

    def find(self, subject: str, canonical: str) -> SubjectVersion | None:
        """The earliest version of ``subject`` holding exactly this schema."""
        for version in self.versions(subject) or []:
            schema_id = self._versions[subject][version]
            if self._schema_by_id[schema_id] == canonical:
                return SubjectVersion(subject, version, schema_id, canonical)
        return None

    def next_id(self) -> int:
        return max(self._schema_by_id, default=0) + 1

    def compatibility(self, subject: str | None) -> str | None:
        return self._compatibility.get(subject)

    # Changing

    def add_schema(self, schema_id: int, canonical: str) -> None:
        self._schema_by_id[schema_id] = canonical
        self._id_by_schema.setdefault(canonical, schema_id)
        self._id_by_guid.setdefault(schema_guid(canonical), schema_id)

    def add_version(self, entry: SubjectVersion) -> None:
        self.add_schema(entry.schema_id, entry.schema)
        self._versions.setdefault(entry.subject, {})[entry.version] = entry.schema_id

    def set_compatibility(self, subject: str | None, level: str | None) -> None:
        if level is None:
            self._compatibility.pop(subject, None)
        else:
            self._compatibility[subject] = level


# The topic's records


def schema_record(entry: SubjectVersion) -> tuple[bytes, bytes]:
    key = {"keytype": "SCHEMA", "subject": entry.subject, "version": entry.version, "magic": 1}
    value = {
        "subject": entry.subject,
        "version": entry.version,
        "id": entry.schema_id,
        "schema": entry.schema,
        "deleted": False,
    }
    return _dumps(key), _dumps(value)


def config_record(subject: str | None, level: str) -> tuple[bytes, bytes]:
    return _dumps({"keytype": "CONFIG", "subject": subject, "magic": 0}), _dumps({"compatibilityLevel": level})


class UnreadableRecord(Exception):
    """A record of the topic this registry cannot interpret; starting anyway could reuse a schema id."""


def apply_record(state: RegistryState, key: bytes | None, value: bytes | None) -> None:
    """Apply one record of the topic to ``state``; a later record for the same key wins, as after compaction."""
    try:
        parsed_key = json.loads(key or b"null")
        keytype = parsed_key["keytype"]
        if keytype == "SCHEMA":
            if value is None:  # a tombstone: this registry never deletes, so never writes one
                log.warning("ignoring a schema tombstone: %r", key)
                return
            parsed = json.loads(value)
            entry = SubjectVersion(parsed["subject"], parsed["version"], parsed["id"], parsed["schema"])
            if parsed.get("deleted"):
                # Written by another registry: the version is gone but its id stays taken.
                state.add_schema(entry.schema_id, entry.schema)
            else:
                state.add_version(entry)
        elif keytype == "CONFIG":
            level = None if value is None else json.loads(value)["compatibilityLevel"]
            state.set_compatibility(parsed_key["subject"], level)
        else:
            log.warning("ignoring a record of a type this registry does not use: %r", key)
    except (ValueError, KeyError, TypeError) as error:
        raise UnreadableRecord(f"record with key {key!r}: {type(error).__name__}: {error}") from None


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
