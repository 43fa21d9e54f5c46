"""The registry's operations: state in memory, every change first made durable in the schema topic.

Single writer: one registry process per topic. Ids and versions are assigned
from this process's memory, so two registries writing one topic could give
one id to two schemas. Readers of the topic (a restarted registry) are fine.
"""

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaException

from . import errors
from .avro_rules import COMPATIBILITY_LEVELS, incompatibilities, is_transitive
from .schema_log import SchemaLog, StoreError, StoreTimeout
from .state import RegistryState, SubjectVersion, UnreadableRecord, apply_record, config_record, schema_record

log = logging.getLogger("espstream.registry")

T = TypeVar("T")

# Confluent's default; the level a production registry most likely enforces.
DEFAULT_COMPATIBILITY = "BACKWARD"


class Registry:
    def __init__(self, schema_log: SchemaLog, default_compatibility: str = DEFAULT_COMPATIBILITY):
        if default_compatibility not in COMPATIBILITY_LEVELS:
            raise ValueError(f"unknown compatibility level {default_compatibility!r}")
        self._log = schema_log
        self._default_compatibility = default_compatibility
        self._state = RegistryState()
        # Readers hold _state_lock for a moment; a writer holds _write_lock for the whole
        # check-write-apply, so a slow broker delays other writes but never reads.
        self._state_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stale = False
        self._load_timeout = 30.0

    # Lifecycle (blocking)

    def start(self, timeout: float = 30.0) -> None:
        """Create the topic if missing and rebuild the state from it."""
        self._load_timeout = timeout
        self._log.ensure_topic(timeout)
        self._reload()
        self._log.connect_producer(timeout)

    def close(self) -> None:
        self._log.close()

    # Reading

    def subjects(self) -> list[str]:
        return self._read(lambda state: state.subjects())

    def versions(self, subject: str) -> list[int]:
        found = self._read(lambda state: state.versions(subject))
        if found is None:
            raise errors.subject_not_found(subject)
        return found

    def version(self, subject: str, version: int | None) -> SubjectVersion:
        """``version`` of ``subject``; ``None`` is the latest."""
        with self._state_lock:
            versions = self._state.versions(subject)
            if versions is None:
                raise errors.subject_not_found(subject)
            number = versions[-1] if version is None else version
            found = self._state.version(subject, number)
        if found is None:
            raise errors.version_not_found(number)
        return found

    def schema(self, schema_id: int) -> str:
        found = self._read(lambda state: state.schema(schema_id))
        if found is None:
            raise errors.schema_not_found(f"Schema {schema_id} not found")
        return found

    def schema_by_guid(self, guid: str) -> tuple[int, str]:
        with self._state_lock:
            schema_id = self._state.id_of_guid(guid)
            found = None if schema_id is None else self._state.schema(schema_id)
        if schema_id is None or found is None:
            raise errors.schema_not_found(f"Schema {guid} not found")
        return schema_id, found

    def uses_of(self, schema_id: int) -> list[tuple[str, int]]:
        with self._state_lock:
            if self._state.schema(schema_id) is None:
                raise errors.schema_not_found(f"Schema {schema_id} not found")
            return self._state.uses_of(schema_id)

    def lookup(self, subject: str, canonical: str) -> SubjectVersion:
        with self._state_lock:
            if self._state.versions(subject) is None:
                raise errors.subject_not_found(subject)
            found = self._state.find(subject, canonical)
        if found is None:
            raise errors.schema_not_found()
        return found

    def global_compatibility(self) -> str:
        return self._read(lambda state: state.compatibility(None)) or self._default_compatibility

    def subject_compatibility(self, subject: str) -> str | None:
        """The level set for ``subject`` itself, if any."""
        return self._read(lambda state: state.compatibility(subject))

    def effective_compatibility(self, subject: str) -> str:
        return self.subject_compatibility(subject) or self.global_compatibility()

    def check_version(self, subject: str, canonical: str, version: int | None) -> list[str]:
        """Why ``canonical`` may not follow ``version`` of ``subject`` (``None``: the latest) under the
        subject's level; empty if it may."""
        old = self.version(subject, version)
        level = self.effective_compatibility(subject)
        return [f"version {old.version}: {problem}" for problem in incompatibilities(canonical, old.schema, level)]

    def check_all(self, subject: str, canonical: str) -> list[str]:
        """As ``check_version``, with every version the subject's level compares a new schema with."""
        return self._incompatibilities(subject, canonical, self.effective_compatibility(subject))

    # Changing (blocking: waits for Kafka's acknowledgement)

    def register(self, subject: str, canonical: str) -> SubjectVersion:
        """Register ``canonical`` under ``subject``; an already registered schema returns its version."""
        with self._write_lock:
            self._reload_if_stale()
            with self._state_lock:
                existing = self._state.find(subject, canonical)
                latest = (self._state.versions(subject) or [0])[-1]
                known_id = self._state.schema_id(canonical)
                schema_id = self._state.next_id() if known_id is None else known_id
            if existing is not None:
                return existing
            level = self.effective_compatibility(subject)
            problems = self._incompatibilities(subject, canonical, level)
            if problems:
                raise errors.RegistryError(
                    409,
                    errors.INCOMPATIBLE_SCHEMA,
                    f'Schema being registered is incompatible with an earlier schema for subject "{subject}" '
                    f"(compatibility {level}), details: {'; '.join(problems)}",
                )
            entry = SubjectVersion(subject, latest + 1, schema_id, canonical)
            self._write(*schema_record(entry))
            with self._state_lock:
                self._state.add_version(entry)
            log.info("registered schema id %d as %s version %d", schema_id, subject, entry.version)
            return entry

    def set_compatibility(self, subject: str | None, level: str) -> str:
        level = level.upper()
        if level not in COMPATIBILITY_LEVELS:
            raise errors.RegistryError(
                422,
                errors.INVALID_COMPATIBILITY_LEVEL,
                f"Invalid compatibility level {level!r}. Valid values are {', '.join(COMPATIBILITY_LEVELS)}",
            )
        with self._write_lock:
            self._reload_if_stale()
            self._write(*config_record(subject, level))
            with self._state_lock:
                self._state.set_compatibility(subject, level)
        return level

    # Internals

    def _incompatibilities(self, subject: str, canonical: str, level: str) -> list[str]:
        if level == "NONE":
            return []
        with self._state_lock:
            numbers = self._state.versions(subject) or []
            compared = numbers if is_transitive(level) else numbers[-1:]
            olds = [self._state.version(subject, number) for number in compared]
        return [
            f"version {old.version}: {problem}"
            for old in olds
            if old is not None
            for problem in incompatibilities(canonical, old.schema, level)
        ]

    def _write(self, key: bytes, value: bytes) -> None:
        try:
            self._log.append(key, value)
        except StoreTimeout as error:
            self._stale = True
            raise errors.RegistryError(
                500, errors.STORE_TIMEOUT, f"Write to the schema topic timed out: {error}"
            ) from None
        except StoreError as error:
            self._stale = True
            raise errors.RegistryError(
                500, errors.STORE_ERROR, f"Write to the schema topic failed: {error}"
            ) from None

    def _reload_if_stale(self) -> None:
        # A failed write may still have reached the topic: learn what is there before assigning the next id.
        if self._stale:
            try:
                self._reload()
            except (KafkaException, TimeoutError, UnreadableRecord) as error:
                raise errors.RegistryError(
                    500, errors.STORE_ERROR, f"Cannot reread the schema topic after a failed write: {error}"
                ) from None
            self._stale = False

    def _reload(self) -> None:
        state = RegistryState()
        count = 0
        for key, value in self._log.read_all(self._load_timeout):
            apply_record(state, key, value)
            count += 1
        with self._state_lock:
            self._state = state
        log.info("loaded %d records from schema topic %s", count, self._log.topic)

    def _read(self, read: Callable[[RegistryState], T]) -> T:
        with self._state_lock:
            return read(self._state)
