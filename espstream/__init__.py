"""espstream: ESP tracking webhooks in, normalized Avro events out, over Kafka."""

__version__ = "0.1.0"
