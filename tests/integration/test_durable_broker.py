"""The durable embedded broker: what it acknowledged survives a SIGKILL of it and of its storage."""

import json
import urllib.request

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from espstream.embedded import EmbeddedBroker, Storage
from espstream.plumbing.config import CommonSettings


def read_all(bootstrap_servers: str, topic: str, partitions: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "reader", "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, partition, 0) for partition in range(partitions)])
    values, ends = [], 0
    while ends < partitions:
        message = consumer.poll(10)
        assert message is not None, "the broker stopped answering"
        if message.error():
            assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
            ends += 1
        else:
            values.append(message.value())
    consumer.close()
    return values


def test_acknowledged_records_and_committed_offsets_survive_a_kill(durable_broker: EmbeddedBroker) -> None:
    servers = durable_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": servers})
    for future in admin.create_topics([NewTopic("kept", 2, 1)]).values():
        future.result()
    acknowledged: list[bytes] = []
    producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True, "linger.ms": 5})
    for n in range(2000):
        producer.produce("kept", f"record {n}".encode(), key=str(n).encode(),
                         on_delivery=lambda error, message: error is None and acknowledged.append(message.value()))  # fmt: skip
        producer.poll(0)
    assert producer.flush(30) == 0
    group = Consumer({"bootstrap.servers": servers, "group.id": "kept-group", "enable.auto.commit": False})
    group.commit(offsets=[TopicPartition("kept", 0, 7), TopicPartition("kept", 1, 11)], asynchronous=False)
    group.close()

    durable_broker.kill()
    durable_broker.start()

    assert sorted(read_all(servers, "kept", 2)) == sorted(acknowledged)
    assert len(acknowledged) == 2000
    group = Consumer({"bootstrap.servers": servers, "group.id": "kept-group"})
    committed = group.committed([TopicPartition("kept", 0), TopicPartition("kept", 1)], timeout=20)
    group.close()
    assert [(tp.partition, tp.offset) for tp in committed] == [(0, 7), (1, 11)]
    producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True})
    producer.produce("kept", b"after", partition=0)
    assert producer.flush(30) == 0  # writes go on after the restart
    assert len(read_all(servers, "kept", 2)) == 2001


def add_to_producer_sequences(storage: Storage, records: int) -> None:
    """Tansu's meta.json as a kill leaves it between its two writes: every idempotent producer's
    sequence counts ``records`` more than the partition holds (a batch counted, never stored)."""
    url = f"http://127.0.0.1:{storage.ports['filer']}/buckets/tansu/clusters/tansu_cluster/meta.json"
    with urllib.request.urlopen(url, timeout=10) as answer:
        meta = json.load(answer)
    counted = 0
    for producer in meta["producers"].values():
        for epoch in producer["sequences"].values():
            for partitions in epoch.values():
                for partition in partitions:
                    partitions[partition] += records
                    counted += 1
    assert counted, meta["producers"]  # at least the idempotent control's
    put = urllib.request.Request(url, data=json.dumps(meta).encode(), method="PUT")
    urllib.request.urlopen(put, timeout=10).close()


def test_a_batch_counted_but_not_stored_is_written_again_by_espstreams_producers(durable_broker: EmbeddedBroker) -> None:
    servers = durable_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": servers})
    for future in admin.create_topics([NewTopic("window", 1, 1)]).values():
        future.result()
    settings = CommonSettings(**{name.removeprefix("ESPSTREAM_").lower(): value for name, value in durable_broker.client_env().items()})
    espstreams = Producer(settings.producer())
    # The control: an idempotent producer loses the batch, which is why espstream's are not.
    idempotent = Producer({"bootstrap.servers": servers, "enable.idempotence": True})
    acknowledged: list[bytes] = []

    def produce(records: range) -> None:
        for producer, name in ((espstreams, b"espstream"), (idempotent, b"idempotent")):
            for n in records:
                producer.produce("window", b"%s %d" % (name, n), partition=0,
                                 on_delivery=lambda error, message: error is None and acknowledged.append(message.value()))  # fmt: skip
            assert producer.flush(30) == 0

    produce(range(5))
    durable_broker.kill()
    storage = Storage(durable_broker.data_dir / "storage", None)
    storage.start(30)
    try:
        add_to_producer_sequences(storage, 3)
    finally:
        storage.process.terminate()
        storage.process.wait(30)
    durable_broker.start()
    produce(range(5, 8))

    stored = read_all(servers, "window", 1)
    assert len(acknowledged) == 16  # every record acknowledged, to both producers
    assert sorted(value for value in stored if value.startswith(b"espstream")) == sorted(b"espstream %d" % n for n in range(8))
    assert sorted(value for value in stored if value.startswith(b"idempotent")) == sorted(b"idempotent %d" % n for n in range(5))
