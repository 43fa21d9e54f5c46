"""The durable embedded broker: what it acknowledged survives a SIGKILL of it and of its storage."""

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from espstream.embedded import EmbeddedBroker


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
