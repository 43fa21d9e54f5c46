"""plumbing.reader: bounded reads of a topic on the embedded broker, whose watermarks and time answers are not the end."""

import time
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from espstream.embedded import EmbeddedBroker
from espstream.plumbing.reader import NoSuchTopic, TopicReader


def new_topic(broker: EmbeddedBroker, partitions: int = 2) -> str:
    name = f"reader-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(15)
    return name


def produce(broker: EmbeddedBroker, topic: str, records: list[tuple[int, bytes, int]]) -> None:
    """``(partition, value, timestamp ms)`` records, batched as librdkafka batches them (several per batch)."""
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 50})
    for partition, value, timestamp in records:
        producer.produce(topic, value, partition=partition, timestamp=timestamp)
    assert producer.flush(15) == 0


def test_every_record_to_the_end_of_each_partition_however_batched(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker)
    now = int(time.time() * 1000)
    produce(broker, topic, [(n % 2, f"r{n}".encode(), now + n) for n in range(20)])

    with TopicReader({"bootstrap.servers": broker.bootstrap_servers}, topic) as reader:
        assert reader.ends([0, 1]) == {0: 10, 1: 10}
        values = sorted(m.value() for m in reader.read(reader.bounds()))
    assert values == sorted(f"r{n}".encode() for n in range(20))


def test_a_start_by_time_or_offsets_and_an_end_by_time(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker, partitions=1)
    base = int(time.time() * 1000) - 100_000
    produce(broker, topic, [(0, f"r{n}".encode(), base + 1000 * n) for n in range(10)])

    with TopicReader({"bootstrap.servers": broker.bootstrap_servers}, topic) as reader:
        assert reader.bounds(since=base + 3500) == {0: (4, 10)}
        assert reader.bounds(since=base + 20_000) == {0: (10, 10)}
        assert reader.bounds(offsets={0: 7}) == {0: (7, 10)}
        later = [m.value() for m in reader.read(reader.bounds(since=base + 3000), until=base + 6000)]
    assert later == [b"r3", b"r4", b"r5"]


def test_records_written_after_the_range_was_made_are_not_read(broker: EmbeddedBroker) -> None:
    topic = new_topic(broker, partitions=1)
    now = int(time.time() * 1000)
    produce(broker, topic, [(0, b"before", now)])

    with TopicReader({"bootstrap.servers": broker.bootstrap_servers}, topic) as reader:
        bounds = reader.bounds()
        produce(broker, topic, [(0, b"after", now + 1)])
        assert [m.value() for m in reader.read(bounds)] == [b"before"]


def test_a_missing_topic_is_said_so(broker: EmbeddedBroker) -> None:
    with TopicReader({"bootstrap.servers": broker.bootstrap_servers}, f"missing-{uuid.uuid4().hex[:8]}") as reader:
        with pytest.raises(NoSuchTopic):
            reader.partitions()


def test_one_reader_reads_again_after_a_range(broker: EmbeddedBroker) -> None:
    """A finished range pauses its partitions; the reader's next end and range still read them."""
    topic = new_topic(broker)
    now = int(time.time() * 1000)
    produce(broker, topic, [(n % 2, f"a{n}".encode(), now + n) for n in range(6)])
    with TopicReader({"bootstrap.servers": broker.bootstrap_servers}, topic, timeout=10) as reader:
        first = reader.bounds()
        assert len(list(reader.read(first))) == 6
        produce(broker, topic, [(n % 2, f"b{n}".encode(), now + 10 + n) for n in range(4)])
        assert reader.ends([0, 1]) == {0: 5, 1: 5}
        later = reader.bounds(offsets={p: end for p, (_start, end) in first.items()})
        assert sorted(m.value() for m in reader.read(later)) == sorted(f"b{n}".encode() for n in range(4))
