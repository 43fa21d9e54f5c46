"""The development schema registry: Confluent Schema Registry's REST API for Avro, kept in a Kafka topic.

Serves what confluent-kafka's ``SchemaRegistryClient`` needs for ``AvroSerializer``
(auto-register, lookup) and ``AvroDeserializer`` (schema by id), plus listing,
compatibility levels and checks (Confluent's default, BACKWARD, enforced on register).
Avro only; no schema references, deletes, contexts, modes or import.

State lives in one compacted single-partition topic (``_schemas`` by default):
on start the registry reads it to its end before it opens its port, and every
change is acknowledged by the broker (acks=all, idempotent producer) before the
answer. One registry process per topic: ids are assigned in its memory.
"""

from .app import create_app
from .server import RegistryServer, serve

__all__ = ["RegistryServer", "create_app", "serve"]
