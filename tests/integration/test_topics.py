"""`espstream topics ensure` against the embedded broker: what it creates, what it reports, what --fix changes.

The embedded broker (Tansu) describes only the configs a topic was created or
altered with, and does not support adding partitions: these tests assert what
a user of it sees, "not reported by the broker" included.
"""

import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from espstream.embedded import EmbeddedBroker
from espstream.plumbing.topics import create_missing, retained_topic
from tests.conftest import settings_from_env
from tests.support.services import own_topics

FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
WEEK_MS = "604800000"
# The defaults: a 2,621,440-byte body, 256 KiB of record headers, 64 KiB of dead-letter headers.
RECORD_BYTES = "2883584"
DEAD_LETTER_BYTES = "2949120"


@pytest.fixture
def env(broker: EmbeddedBroker) -> dict[str, str]:
    """Settings naming topics no other test uses; 3 partitions wanted."""
    return own_topics(broker.bootstrap_servers)


@pytest.fixture
def admin(broker: EmbeddedBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap_servers})


def ensure(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "espstream", "topics", "ensure", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def configs(admin: AdminClient, topic: str) -> dict[str, str]:
    [future] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=10).values()
    return {name: entry.value for name, entry in future.result().items()}


def partitions(admin: AdminClient, topic: str) -> int:
    return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)


def create(admin: AdminClient, *topics: NewTopic) -> None:
    for future in admin.create_topics(list(topics), operation_timeout=10).values():
        future.result()


def test_ensure_creates_every_topic_with_its_settings_then_finds_them_as_wanted(env, admin):
    raw, normalized, dlq = env["ESPSTREAM_RAW_TOPIC"], env["ESPSTREAM_NORMALIZED_TOPIC"], env["ESPSTREAM_DLQ_TOPIC"]
    billing, audit = f"{normalized}.dlq.billing", f"{normalized}.dlq.audit"
    status, suppressions = env["ESPSTREAM_STATUS_TOPIC"], env["ESPSTREAM_SUPPRESSIONS_TOPIC"]
    # The consumer runner creates its group's dead-letter topic itself, as here.
    create_missing(settings_from_env(env), [retained_topic(settings_from_env(env), billing)])

    first = ensure(env, "--group", "billing", "--group", "audit")

    assert first.returncode == 0, first.stderr
    assert lines(first) == [
        f"{raw}: created", f"{normalized}: created", f"{dlq}: created", f"{status}: created", f"{suppressions}: created",
        f"{billing}: ok", f"{audit}: created",
    ]
    assert configs(admin, raw) == {**FOREVER, "max.message.bytes": DEAD_LETTER_BYTES}
    # Derived data: retention is the broker's own unless configured.
    assert configs(admin, normalized) == {"max.message.bytes": RECORD_BYTES}
    for letters in (dlq, billing, audit):
        assert configs(admin, letters) == {**FOREVER, "max.message.bytes": DEAD_LETTER_BYTES}
    # espstream status's state: the last value per key.
    for state in (status, suppressions):
        assert configs(admin, state) == {"cleanup.policy": "compact"}
    for topic in (raw, normalized, dlq, status, suppressions, billing, audit):
        assert partitions(admin, topic) == 3

    again = ensure(env, "--group", "billing,audit")

    assert again.returncode == 0, again.stderr
    assert lines(again) == [f"{topic}: ok" for topic in (raw, normalized, dlq, status, suppressions, billing, audit)]


def test_retention_comes_from_the_settings(env, admin):
    env |= {
        "ESPSTREAM_NORMALIZED_RETENTION_MS": "86400000",
        "ESPSTREAM_NORMALIZED_RETENTION_BYTES": "1073741824",
        "ESPSTREAM_RAW_RETENTION_MS": "63072000000",
        "ESPSTREAM_DLQ_RETENTION_BYTES": "5368709120",
    }

    result = ensure(env, "--group", "billing")

    assert result.returncode == 0, result.stderr
    normalized = env["ESPSTREAM_NORMALIZED_TOPIC"]
    assert configs(admin, normalized) == {
        "retention.ms": "86400000",
        "retention.bytes": "1073741824",
        "max.message.bytes": RECORD_BYTES,
    }
    assert configs(admin, env["ESPSTREAM_RAW_TOPIC"])["retention.ms"] == "63072000000"
    assert configs(admin, env["ESPSTREAM_RAW_TOPIC"])["retention.bytes"] == "-1"
    for letters in (env["ESPSTREAM_DLQ_TOPIC"], f"{normalized}.dlq.billing"):
        assert configs(admin, letters) == {"retention.ms": "-1", "retention.bytes": "5368709120", "max.message.bytes": DEAD_LETTER_BYTES}

    # The same topics checked with other settings: what differs is named.
    env["ESPSTREAM_NORMALIZED_RETENTION_MS"] = "3600000"
    assert lines(ensure(env))[1] == f"{normalized}: differs: retention.ms is 86400000, wanted 3600000"


def test_existing_topics_that_differ_are_reported_and_left_alone(env, admin):
    raw, normalized, dlq = env["ESPSTREAM_RAW_TOPIC"], env["ESPSTREAM_NORMALIZED_TOPIC"], env["ESPSTREAM_DLQ_TOPIC"]
    billing = f"{normalized}.dlq.billing"
    create(
        admin,
        # Created by hand with a week's retention and too few partitions.
        NewTopic(raw, 2, 1, config={"retention.ms": WEEK_MS, "retention.bytes": "-1", "max.message.bytes": DEAD_LETTER_BYTES}),
        # More partitions than wanted, and a smaller record limit.
        NewTopic(normalized, 5, 1, config={"max.message.bytes": "1048588"}),
        # Created without configs: this broker then reports none of them.
        NewTopic(dlq, 3, 1),
        NewTopic(billing, 3, 1, config={**FOREVER, "max.message.bytes": DEAD_LETTER_BYTES}),
    )
    env["ESPSTREAM_TOPIC_REPLICATION_FACTOR"] = "2"  # this broker takes any replication factor it is asked for

    result = ensure(env, "--group", "billing")

    assert result.returncode == 1
    reassign = "(changed by partition reassignment, not by topics ensure)"
    assert lines(result) == [
        f"{raw}: differs: partitions is 2, wanted 3; replication factor is 1, wanted 2 {reassign}; retention.ms is {WEEK_MS}, wanted -1",
        f"{normalized}: differs: partitions is 5, wanted 3 (partitions are never removed); replication factor is 1, wanted 2 {reassign};"
        f" max.message.bytes is 1048588, wanted {RECORD_BYTES}",
        f"{dlq}: differs: replication factor is 1, wanted 2 {reassign}; retention.ms not reported by the broker;"
        " retention.bytes not reported by the broker; max.message.bytes not reported by the broker",
        f"{env['ESPSTREAM_STATUS_TOPIC']}: created",
        f"{env['ESPSTREAM_SUPPRESSIONS_TOPIC']}: created",
        f"{billing}: differs: replication factor is 1, wanted 2 {reassign}",
    ]
    assert configs(admin, raw)["retention.ms"] == WEEK_MS
    assert configs(admin, normalized) == {"max.message.bytes": "1048588"}
    assert configs(admin, dlq) == {}
    assert (partitions(admin, raw), partitions(admin, normalized)) == (2, 5)


def test_a_setting_the_broker_does_not_report_is_unverified_not_ok(env, admin):
    create(admin, NewTopic(env["ESPSTREAM_DLQ_TOPIC"], 3, 1, config={"retention.ms": "-1"}))

    result = ensure(env)

    assert result.returncode == 1
    assert lines(result)[2] == (
        f"{env['ESPSTREAM_DLQ_TOPIC']}: unverified: retention.bytes not reported by the broker;"
        " max.message.bytes not reported by the broker"
    )


def test_fix_sets_the_configs_and_says_what_it_could_not_do(env, admin):
    raw, normalized, dlq = env["ESPSTREAM_RAW_TOPIC"], env["ESPSTREAM_NORMALIZED_TOPIC"], env["ESPSTREAM_DLQ_TOPIC"]
    create(
        admin,
        NewTopic(raw, 2, 1, config={"retention.ms": WEEK_MS, "retention.bytes": "-1", "max.message.bytes": DEAD_LETTER_BYTES}),
        NewTopic(normalized, 5, 1, config={"max.message.bytes": RECORD_BYTES}),
        NewTopic(dlq, 3, 1),
    )

    fixed = ensure(env, "--fix")

    assert fixed.returncode == 1
    [raw_line, normalized_line, dlq_line, *state_lines] = lines(fixed)
    assert state_lines == [f"{env[name]}: created" for name in ("ESPSTREAM_STATUS_TOPIC", "ESPSTREAM_SUPPRESSIONS_TOPIC")]
    # This broker does not implement CreatePartitions: the raw topic keeps 2.
    assert raw_line.startswith(f"{raw}: differs: partitions is 2, wanted 3; retention.ms was {WEEK_MS}, now -1; adding partitions failed: ")
    assert "CreatePartitions" in raw_line
    assert normalized_line == f"{normalized}: differs: partitions is 5, wanted 3 (partitions are never removed)"
    assert dlq_line == (
        f"{dlq}: fixed: retention.ms was not reported, now -1; retention.bytes was not reported, now -1;"
        f" max.message.bytes was not reported, now {DEAD_LETTER_BYTES}"
    )
    assert configs(admin, raw) == {**FOREVER, "max.message.bytes": DEAD_LETTER_BYTES}
    assert configs(admin, dlq) == {**FOREVER, "max.message.bytes": DEAD_LETTER_BYTES}
    assert (partitions(admin, raw), partitions(admin, normalized)) == (2, 5)

    after = ensure(env)

    assert lines(after) == [
        f"{raw}: differs: partitions is 2, wanted 3",
        f"{normalized}: differs: partitions is 5, wanted 3 (partitions are never removed)",
        f"{dlq}: ok",
        *(f"{env[name]}: ok" for name in ("ESPSTREAM_STATUS_TOPIC", "ESPSTREAM_SUPPRESSIONS_TOPIC")),
    ]
    assert after.returncode == 1


def test_fix_on_topics_as_wanted_changes_nothing(env, admin):
    assert ensure(env).returncode == 0

    result = ensure(env, "--fix")

    assert result.returncode == 0
    names = ("ESPSTREAM_RAW_TOPIC", "ESPSTREAM_NORMALIZED_TOPIC", "ESPSTREAM_DLQ_TOPIC", "ESPSTREAM_STATUS_TOPIC", "ESPSTREAM_SUPPRESSIONS_TOPIC")
    assert lines(result) == [f"{env[name]}: ok" for name in names]
