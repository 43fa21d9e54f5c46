"""Offsets of a consumed batch: where to commit, where to rewind."""

from confluent_kafka import Message, TopicPartition


def next_offsets(records: list[Message]) -> list[TopicPartition]:
    """Per partition, the offset after the batch's last record: what to commit."""
    offsets: dict[tuple[str, int], TopicPartition] = {}
    for m in records:
        offsets[(m.topic(), m.partition())] = TopicPartition(m.topic(), m.partition(), m.offset() + 1)
    return list(offsets.values())


def first_offsets(records: list[Message]) -> list[TopicPartition]:
    """Per partition, the batch's first offset: where to seek to read the batch again."""
    offsets: dict[tuple[str, int], TopicPartition] = {}
    for m in records:
        offsets.setdefault((m.topic(), m.partition()), TopicPartition(m.topic(), m.partition(), m.offset()))
    return list(offsets.values())
