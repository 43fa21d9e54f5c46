"""espstream's topics: creating them, and checking existing ones against what is wanted.

``ensure_topics`` creates what is missing (every service calls it at startup).
``ensure`` does that and compares every existing topic's partitions,
replication factor, retention and record size limit with the wanted ones,
changing a topic only when asked to (``fix``). A setting the broker does not
report is said to be unreported, never taken as equal: some Kafka-compatible
brokers (Tansu, the embedded one) report only the configs a topic was created
or altered with.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from .config import CommonSettings

PARTITIONS = "partitions"
REPLICATION_FACTOR = "replication factor"


def wanted_topics(settings: CommonSettings) -> list[NewTopic]:
    """The pipeline's topics as they should be: raw, normalized, the normalizer's dead letters, the status state."""
    normalized_config = {"max.message.bytes": str(settings.max_record_bytes)}
    normalized_config |= _retention(settings.normalized_retention_ms, settings.normalized_retention_bytes)
    return [
        # The system of record: dead letters carry its records, so it gets the same room.
        NewTopic(
            settings.raw_topic,
            settings.topic_partitions,
            settings.topic_replication_factor,
            config={
                **_retention(settings.raw_retention_ms, settings.raw_retention_bytes),
                "max.message.bytes": str(settings.max_dead_letter_bytes),
            },
        ),
        NewTopic(settings.normalized_topic, settings.topic_partitions, settings.topic_replication_factor, config=normalized_config),
        retained_topic(settings, settings.dlq_topic),
        compacted_topic(settings, settings.status_topic),
        compacted_topic(settings, settings.suppressions_topic),
    ]


def compacted_topic(settings: CommonSettings, name: str) -> NewTopic:
    """A state topic of `espstream status`: the last value per key is the state, so older ones may go."""
    return NewTopic(name, settings.topic_partitions, settings.topic_replication_factor, config={"cleanup.policy": "compact"})


def retained_topic(settings: CommonSettings, name: str) -> NewTopic:
    """A dead-letter topic (the normalizer's or a receiver group's): kept forever unless configured otherwise."""
    config = {
        **_retention(settings.dlq_retention_ms, settings.dlq_retention_bytes),
        # A dead letter is a record plus its own headers.
        "max.message.bytes": str(settings.max_dead_letter_bytes),
    }
    return NewTopic(name, settings.topic_partitions, settings.topic_replication_factor, config=config)


def _retention(ms: int | None, size: int | None) -> dict[str, str]:
    """The retention configs to set; None leaves one to the broker's default."""
    config = {}
    if ms is not None:
        config["retention.ms"] = str(ms)
    if size is not None:
        config["retention.bytes"] = str(size)
    return config


def ensure_topics(settings: CommonSettings, timeout: float = 15.0) -> list[str]:
    """Create the missing pipeline topics; return the names of those created."""
    return create_missing(settings, wanted_topics(settings), timeout)


def create_missing(settings: CommonSettings, topics: list[NewTopic], timeout: float = 15.0) -> list[str]:
    """Create those of ``topics`` that do not exist; return their names. Existing topics are left as they are."""
    outcome = _create(AdminClient(settings.kafka()), topics, timeout)
    for error in outcome.values():
        if error is not None:
            raise KafkaException(error)
    return [name for name, error in outcome.items() if error is None]


@dataclass(frozen=True)
class Difference:
    """A setting of an existing topic that is not the wanted one."""

    setting: str
    actual: str
    wanted: str
    note: str = ""  # why it stays so, e.g. what fix cannot do

    def __str__(self) -> str:
        return f"{self.setting} is {self.actual}, wanted {self.wanted}" + (f" ({self.note})" if self.note else "")


@dataclass
class TopicReport:
    """What ``ensure`` found (and did) for one topic."""

    topic: str
    created: bool = False
    differences: list[Difference] = field(default_factory=list)
    # Wanted configs the broker did not report: they could not be compared.
    unreported: list[str] = field(default_factory=list)
    # Settings ``fix`` changed: (setting, what it was, what it is now).
    fixed: list[tuple[str, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def as_wanted(self) -> bool:
        """Every wanted setting was seen to be so (or the topic was just created with them)."""
        return not (self.differences or self.unreported or self.errors)

    @property
    def status(self) -> str:
        if self.differences:
            return "differs"
        if self.errors:
            return "error"
        if self.unreported:
            return "unverified"
        if self.fixed:
            return "fixed"
        return "created" if self.created else "ok"

    def line(self) -> str:
        """One line for a person: ``topic: status[: detail; detail]``."""
        details = [str(difference) for difference in self.differences]
        details += [f"{setting} was {was}, now {now}" for setting, was, now in self.fixed]
        details += [f"{setting} not reported by the broker" for setting in self.unreported]
        details += self.errors
        return f"{self.topic}: {self.status}" + (f": {'; '.join(details)}" if details else "")


@dataclass(frozen=True)
class _Actual:
    """An existing topic's settings as the broker reports them, or why it could not say."""

    partitions: int = 0
    replication_factor: int = 0
    configs: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def ensure(
    settings: CommonSettings, dead_letter_topics: Iterable[str] = (), *, fix: bool = False, timeout: float = 15.0
) -> list[TopicReport]:
    """Create the missing topics, check the others; with ``fix``, bring existing ones to the wanted settings.

    ``dead_letter_topics`` are receiver groups' dead-letter topics, wanted as
    ``retained_topic``. ``fix`` sets differing or unreported configs, adds
    partitions to a topic with too few, and never removes partitions or changes a
    replication factor (Kafka cannot shrink a topic; a replication factor changes
    by partition reassignment). A topic that cannot be created or described gets
    its error in its report; KafkaException when the broker's metadata cannot be
    read at all.
    """
    wanted = {topic.topic: topic for topic in wanted_topics(settings)}
    for name in dead_letter_topics:
        wanted.setdefault(name, retained_topic(settings, name))
    admin = AdminClient(settings.kafka())
    reports = {name: TopicReport(name) for name in wanted}
    for name, error in _create(admin, list(wanted.values()), timeout).items():
        if error is None:
            reports[name].created = True
        else:
            reports[name].errors.append(f"could not be created: {error.str()}")
    existing = [topic for name, topic in wanted.items() if not reports[name].created and not reports[name].errors]
    actual = _describe(admin, [topic.topic for topic in existing], timeout)
    for topic in existing:
        _compare(topic, actual[topic.topic], reports[topic.topic])
        if fix and (reports[topic.topic].differences or reports[topic.topic].unreported):
            _fix(admin, topic, reports[topic.topic], timeout)
    return list(reports.values())


def _create(admin: AdminClient, topics: list[NewTopic], timeout: float) -> dict[str, KafkaError | None]:
    """Create the missing ``topics``: None for each created, its error for each that failed otherwise than existing."""
    outcome: dict[str, KafkaError | None] = {}
    for name, future in admin.create_topics(topics, operation_timeout=timeout, request_timeout=timeout).items():
        try:
            future.result()
            outcome[name] = None
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                outcome[name] = error.args[0]
    return outcome


def _describe(admin: AdminClient, names: list[str], timeout: float) -> dict[str, _Actual]:
    if not names:
        return {}
    metadata = admin.list_topics(timeout=timeout)
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    configs: dict[str, dict[str, str] | str] = {}
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        try:
            configs[resource.name] = {key: entry.value for key, entry in future.result().items() if entry.value is not None}
        except KafkaException as error:
            configs[resource.name] = f"its configs could not be read: {error.args[0].str()}"
    actual = {}
    for name in names:
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            actual[name] = _Actual(error=f"not in the broker's metadata: {topic.error.str() if topic else 'unknown topic'}")
        elif isinstance(configs[name], str):
            actual[name] = _Actual(error=configs[name])
        else:
            partitions = topic.partitions.values()
            # The topic is as replicated as its least replicated partition.
            replicas = min((len(partition.replicas) for partition in partitions), default=0)
            actual[name] = _Actual(len(partitions), replicas, configs[name])
    return actual


def _compare(wanted: NewTopic, actual: _Actual, report: TopicReport) -> None:
    if actual.error is not None:
        report.errors.append(actual.error)
        return
    if actual.partitions != wanted.num_partitions:
        note = "partitions are never removed" if actual.partitions > wanted.num_partitions else ""
        report.differences.append(Difference(PARTITIONS, str(actual.partitions), str(wanted.num_partitions), note))
    if actual.replication_factor != wanted.replication_factor:
        report.differences.append(
            Difference(
                REPLICATION_FACTOR,
                str(actual.replication_factor),
                str(wanted.replication_factor),
                "changed by partition reassignment, not by topics ensure",
            )
        )
    for setting, value in wanted.config.items():
        reported = actual.configs.get(setting)
        if reported is None:
            report.unreported.append(setting)
        elif not _same_value(reported, value):
            report.differences.append(Difference(setting, reported, value))


def _same_value(reported: str, wanted: str) -> bool:
    try:
        return int(reported) == int(wanted)
    except ValueError:
        return reported == wanted


def _fix(admin: AdminClient, wanted: NewTopic, report: TopicReport, timeout: float) -> None:
    """Set the differing and unreported configs and add missing partitions, then say what changed."""
    before = {difference.setting: difference for difference in report.differences}
    configs = [setting for setting in wanted.config if setting in before or setting in report.unreported]
    if configs:
        entries = [ConfigEntry(s, wanted.config[s], incremental_operation=AlterConfigOpType.SET) for s in configs]
        resource = ConfigResource(ResourceType.TOPIC, wanted.topic, incremental_configs=entries)
        try:
            for future in admin.incremental_alter_configs([resource], request_timeout=timeout).values():
                future.result()
        except KafkaException as error:
            report.errors.append(f"changing {', '.join(configs)} failed: {error.args[0].str()}")
    too_few = before.get(PARTITIONS)
    added = False
    if too_few is not None and int(too_few.actual) < wanted.num_partitions:
        try:
            new = NewPartitions(wanted.topic, wanted.num_partitions)
            for future in admin.create_partitions([new], operation_timeout=timeout, request_timeout=timeout).values():
                future.result()
            added = True
        except KafkaException as error:
            report.errors.append(f"adding partitions failed: {error.args[0].str()}")
    # What the broker reports now is the outcome, whatever it answered (some accept what they ignore).
    again = TopicReport(wanted.topic)
    _compare(wanted, _describe(admin, [wanted.topic], timeout)[wanted.topic], again)
    if added:
        again.differences = [
            Difference(d.setting, d.actual, d.wanted, "added; the broker's metadata does not show them yet")
            if d.setting == PARTITIONS else d
            for d in again.differences
        ]
    if again.errors:  # nothing is known about the outcome
        report.errors += again.errors
        return
    now = {difference.setting for difference in again.differences} | set(again.unreported)
    for setting in [*before, *report.unreported]:
        if setting not in now:
            was = before[setting].actual if setting in before else "not reported"
            value = wanted.config.get(setting, str(wanted.num_partitions))
            report.fixed.append((setting, was, value))
    report.differences, report.unreported = again.differences, again.unreported
