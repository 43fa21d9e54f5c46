"""`espstream normalize --processes 2`: two members of the normalizer's group, every record normalized once."""

import json
import socket
from pathlib import Path

import psutil
from confluent_kafka import Producer

from benchmarks.payloads import raw_records
from espstream.embedded import EmbeddedBroker, free_port, wait_for_port
from espstream.plumbing.topics import ensure_topics
from tests.conftest import settings_from_env
from tests.integration.test_metrics import scrape, series, value
from tests.support.services import Service, eventually, own_topics, read_topic

RECORDS = 60
PARTITIONS = 4


def test_two_members_share_the_partitions_and_normalize_every_record(broker: EmbeddedBroker, registry_url: str, tmp_path: Path) -> None:
    base_port = free_port()
    while not _free(base_port + 1):
        base_port = free_port()
    env = {
        **own_topics(broker.bootstrap_servers, registry_url, partitions=PARTITIONS),
        "ESPSTREAM_NORMALIZER_METRICS_PORT": str(base_port),
        "ESPSTREAM_KAFKA_CONFIG": json.dumps({"statistics.interval.ms": 500}),
    }
    ensure_topics(settings_from_env({name: v for name, v in env.items() if name != "ESPSTREAM_KAFKA_CONFIG"}))
    service = Service(["normalize", "--processes", "2"], env, tmp_path / "normalizer.log").start()
    children: list[psutil.Process] = []
    try:
        members = [f"http://127.0.0.1:{base_port + number}/metrics" for number in range(2)]
        for number in range(2):
            wait_for_port("127.0.0.1", base_port + number, timeout=30)

        def assigned_partitions(url: str) -> set[str]:
            return {dict(labels)["partition"] for labels in series(scrape(url), "espstream_consumer_lag_records")}

        # Both members joined and the group's partitions are split between them.
        eventually(lambda: all(assigned_partitions(url) for url in members)
                   and len(assigned_partitions(members[0]) | assigned_partitions(members[1])) == PARTITIONS, timeout=60)

        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        for number, (body, headers) in enumerate(raw_records(RECORDS)):
            producer.produce(env["ESPSTREAM_RAW_TOPIC"], body, headers=headers, partition=number % PARTITIONS)
        assert producer.flush(10) == 0

        def normalized_by_member() -> list[float] | None:
            counts = [value(scrape(url), "espstream_normalizer_records_total", esp="postmark") or 0 for url in members]
            return counts if sum(counts) >= RECORDS else None

        counts = eventually(normalized_by_member, timeout=60)
        assert all(count > 0 for count in counts), counts  # each member normalized its own partitions' records
        events = read_topic(broker.bootstrap_servers, env["ESPSTREAM_NORMALIZED_TOPIC"])
        assert len({message.value() for message in events}) == RECORDS

        children = psutil.Process(service.process.pid).children()
        assert len(children) == 2
    finally:
        code = service.stop()
    assert code == 0, service.log()
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
