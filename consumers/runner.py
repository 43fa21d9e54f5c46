"""The runner: one consumer-group member on the normalized topic calling the signal's receivers.

The polling thread reads what the client has fetched in batches, decodes each
event and hands it to a lane chosen by its key (the message id), a batch's
events of one lane in one hand-off: one message's events are handled in order,
other messages' in parallel, one lane per unit of ``concurrency``. With
``concurrency`` 1 the polling thread is the one lane: it handles each batch
before reading the next, with no thread hand-off. An event is finished when
every wanted receiver returned for it, or when it was dead-lettered to
``<normalized topic>.dlq.<group>`` after its last attempt and the broker
acknowledged the letter. A partition's offset is committed up to its lowest
unfinished event. On a rebalance and on stop, the events already read finish
and are committed before their partitions are released, so the next owner
starts exactly after them.

Each event's handling runs with its webhook's request id in the logging context
(espstream.plumbing.logs.REQUEST_ID), so the receivers' log lines and ours carry it.
Metrics (consumers.metrics) are served on ESPSTREAM_CONSUMER_METRICS_PORT, with the probes
/healthz and /readyz.
"""

import logging
import queue
import threading
import time
import zlib
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.batches import durable_consumer_config, read_batch
from espstream.plumbing.deadletters import DeadLetterWriter
from espstream.plumbing.lifecycle import run_until_signalled
from espstream.plumbing.logs import REQUEST_ID
from espstream.plumbing.metrics import ConsumerLag, Liveness, serve
from espstream.plumbing.topics import create_missing, retained_topic
from espstream.schemas import TrackingEvent, raw
from espstream.schemas.avro import EventDeserializer, registry_unreachable

from .dispatch import AsyncLoop, DedupeWindow
from .inflight import InFlight, PartitionId, PartitionWork
from .metrics import GroupMetrics, MeteredDispatcher
from .settings import ConsumerSettings
from .signals import Signal, tracking

log = logging.getLogger("espstream.consumers")

POLL_SECONDS = 0.2
# How long reading waits for the lanes to make room before it pauses fetching.
ROOM_WAIT_SECONDS = 1.0
COMMIT_INTERVAL_SECONDS = 1.0
REGISTRY_RETRY_SECONDS = 2.0
# The receiver name on a dead letter of a record that could not be decoded.
DECODE = "(decode)"

Job = tuple[PartitionWork, Message, TrackingEvent | None, Exception | None]
# The jobs of one lane from one batch read, in offset order per partition.
Jobs = list[Job]


class TrackingConsumer:
    """The ``sender`` receivers are called with, as anymail passes its webhook view class."""

    def __init__(
        self,
        group: str,
        signal: Signal = tracking,
        settings: ConsumerSettings | None = None,
        concurrency: int | None = None,
    ):
        self.group = group
        self.signal = signal
        self.settings = settings = settings or ConsumerSettings()
        self.concurrency = concurrency or settings.consumer_concurrency
        self.dlq_topic = settings.group_dlq_topic(group)
        kafka_log = logging.getLogger("espstream.kafka")
        # The group's lag comes from librdkafka's statistics, only when someone can read it.
        self.lag = ConsumerLag(group) if settings.consumer_metrics_port else None
        lag = self.lag.config(settings.kafka_config) if self.lag is not None else {}
        # What /readyz reads: assigned partitions, and a clock read per poll (none per record).
        self.liveness = Liveness(lag=self.lag)
        self.consumer = Consumer(
            durable_consumer_config(
                settings.kafka(
                    **{
                        "group.id": group,
                        "session.timeout.ms": settings.kafka_session_timeout_ms,
                        # A rebalance waits for the events in flight, retries included.
                        "max.poll.interval.ms": _max_poll_interval_ms(settings, self.concurrency),
                        "logger": kafka_log,
                        **lag,
                    }
                )
            )
        )
        self.dead_letters = DeadLetterWriter(
            settings.producer(**{"message.max.bytes": settings.max_dead_letter_bytes, "logger": kafka_log})
        )
        self.decode = EventDeserializer(SchemaRegistryClient(settings.registry()))
        self.loop = AsyncLoop()
        self.metrics = GroupMetrics(group)
        self.dispatcher = MeteredDispatcher(signal, settings, TrackingConsumer, self.loop, metrics=self.metrics)
        self.window = DedupeWindow(settings.consumer_dedupe_window)
        self.inflight = InFlight()
        # Concurrency 1: no lane threads, the polling thread handles what it reads.
        lane_threads = self.concurrency if self.concurrency > 1 else 0
        self._lanes: list[queue.SimpleQueue[Jobs | None]] = [queue.SimpleQueue() for _ in range(lane_threads)]
        self._stopping = threading.Event()
        self._broken = threading.Event()  # a lane died: nothing waits for its events any more
        self._paused = False
        self._last_commit = 0.0

    def stop(self, *_args: object) -> None:
        """Finish the events read so far, commit them, leave the group."""
        self._stopping.set()

    def run(self) -> None:
        settings = self.settings
        if settings.consumer_metrics_port:
            serve(settings.metrics_host, settings.consumer_metrics_port, "ESPSTREAM_CONSUMER_METRICS_PORT", log,
                  liveness=self.liveness)
        create_missing(self.settings, [retained_topic(self.settings, self.dlq_topic)])
        log.info(
            "group %s consuming %s with %d receiver(s), concurrency %d",
            self.group, self.settings.normalized_topic, len(self.signal.connections), self.concurrency,
        )
        lanes = [
            threading.Thread(target=self._work, args=(lane,), name=f"lane-{number}", daemon=True)
            for number, lane in enumerate(self._lanes)
        ]
        for lane in lanes:
            lane.start()
        self.consumer.subscribe(
            [self.settings.normalized_topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        polled = self.liveness.polled
        try:
            while not self._stopping.is_set():
                polled()
                self._throttle()
                if self._paused:
                    # Nothing is fetched: wake as soon as the lanes made room, not after a poll timeout.
                    self.inflight.wait_read_ahead(self.settings.consumer_batch_size // 2, POLL_SECONDS)
                    message = self.consumer.poll(0)
                    messages = [message] if message is not None else []
                else:
                    messages = self._read()
                if messages:
                    self._accept(messages)
                self._commit_due()
        finally:
            self.inflight.wait_finished(None, self._broken)
            self._commit()
            self.consumer.close()  # leaves the group; on_revoke finds nothing left to wait for
            for lane_queue in self._lanes:
                lane_queue.put(None)
            for lane in lanes:
                lane.join(30)
            self.loop.close()
            self.dead_letters.close()
        if self._broken.is_set():
            raise RuntimeError("a lane stopped on an unexpected error (logged above)")

    # The polling thread.

    def _read(self) -> list[Message]:
        """What the client has fetched, up to the room left in the read-ahead; else the next record within POLL_SECONDS."""
        room = max(1, self.settings.consumer_batch_size - self.inflight.read_ahead())
        return read_batch(self.consumer, room, idle_seconds=POLL_SECONDS)

    def _accept(self, messages: list[Message]) -> None:
        """Decode ``messages``; handle each at once (concurrency 1), or hand them to their lanes, a hand-off per lane."""
        jobs: list[Jobs] = [[] for _ in self._lanes]
        works: dict[PartitionId, PartitionWork | None] = {}  # no rebalance happens in here
        for index, message in enumerate(messages):
            error = message.error()
            if error is not None:
                log.warning("consume error: %s", error)
                continue
            pid = (message.topic(), message.partition())
            try:
                work = works[pid]
            except KeyError:
                work = works[pid] = self.inflight.get(pid)
            if work is None:  # from a partition no longer ours: its owner reads it
                continue
            failure: Exception | None = None
            try:
                event = self.decode(message.value(), pid[0])
            except Exception as exc:
                if registry_unreachable(exc):
                    log.warning("schema registry unreachable (%s): reading the event again", exc)
                    self._hand_over(jobs)
                    self._read_again(works, messages[index:])
                    return
                event, failure = None, exc
            if event is None and failure is None:  # a null value: nothing to decode, nothing to call
                failure = ValueError("record has no value")
            if not self.inflight.start(work, message.offset()):
                continue
            if not self._lanes:  # handled at once: the event is garbage before the next is decoded
                if not self._run_jobs(((work, message, event, failure),)):
                    return
                continue
            jobs[self._lane_of(message)].append((work, message, event, failure))
        self._hand_over(jobs)

    def _hand_over(self, jobs: list[Jobs]) -> None:
        for lane, lane_jobs in zip(self._lanes, jobs):
            if lane_jobs:
                lane.put(lane_jobs)

    def _lane_of(self, message: Message) -> int:
        """Events of one key share a lane; keyless ones keep their partition's order."""
        key = message.key()
        return (zlib.crc32(key) if key is not None else message.partition()) % len(self._lanes)

    def _read_again(self, works: dict[PartitionId, PartitionWork | None], messages: list[Message]) -> None:
        """``messages`` (the rest of a batch) will be read again: each partition from its first one among them."""
        first: dict[PartitionId, int] = {}
        for message in messages:
            if message.error() is None:
                first.setdefault((message.topic(), message.partition()), message.offset())
        for (topic, partition), offset in first.items():
            work = works.get((topic, partition)) or self.inflight.get((topic, partition))
            if work is None:
                continue
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
                self.inflight.rewind(work, offset)
            except KafkaException as error:  # revoked meanwhile: its new owner reads it
                log.info("not reading %s[%d]@%d again: %s", topic, partition, offset, error)
        time.sleep(REGISTRY_RETRY_SECONDS)

    def _throttle(self) -> None:
        """Hold reading while ``consumer_batch_size`` events are read ahead of the unfinished.

        Lanes that keep up make room within moments: the polling thread waits for it
        and the client's prefetched records stay. Only when they do not (a slow or stuck
        receiver) is fetching paused, polling going on; it resumes at half the limit.
        Pausing drops what the client had prefetched, so it is for that case only.
        """
        # Counted from each partition's lowest unfinished event, not only the unfinished ones:
        # otherwise other keys' lanes run ahead of a stuck one without bound.
        limit = self.settings.consumer_batch_size
        if self._paused:
            if self.inflight.read_ahead() <= limit // 2:
                self.consumer.resume(self.consumer.assignment())
                self._paused = False
            return
        if self.inflight.read_ahead() < limit:
            return
        self.inflight.wait_read_ahead(limit - 1, ROOM_WAIT_SECONDS)
        if self.inflight.read_ahead() >= limit:
            self.consumer.pause(self.consumer.assignment())
            self._paused = True

    def _commit_due(self) -> None:
        now = time.monotonic()
        if now - self._last_commit >= COMMIT_INTERVAL_SECONDS:
            self._last_commit = now
            self._commit()

    def _commit(self, pids: list[PartitionId] | None = None) -> None:
        offsets = self.inflight.to_commit(pids)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            # Nothing is lost: the events after the last commit are handled again.
            log.warning("offset commit failed: %s", error)
            return
        self.inflight.committed(offsets)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", sorted(tp.partition for tp in partitions))
        self.liveness.assign(partitions)
        self.inflight.assign((tp.topic, tp.partition) for tp in partitions)
        # Whatever was paused before, the next throttle resumes the whole assignment when there is room.
        self._paused = True

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        pids = [(tp.topic, tp.partition) for tp in partitions]
        self.inflight.wait_finished(pids, self._broken)
        self._commit(pids)
        self.inflight.release(pids)
        self.liveness.revoke(partitions)
        log.info("revoked %s after committing their finished events", sorted(tp.partition for tp in partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member owns them now; committing would only repeat its work.
        log.warning("lost %s without committing", sorted(tp.partition for tp in partitions))
        self.liveness.revoke(partitions)
        self.inflight.release((tp.topic, tp.partition) for tp in partitions)

    # The lanes.

    def _work(self, lane: "queue.SimpleQueue[Jobs | None]") -> None:
        while (jobs := lane.get()) is not None:
            if not self._run_jobs(jobs):
                return

    def _run_jobs(self, jobs: Iterable[Job]) -> bool:
        """Handle ``jobs`` in order; False (and the runner stopping) on an unexpected error."""
        try:
            for job in jobs:
                self._handle(*job)
        except BaseException:
            log.critical("unexpected error handling an event: stopping", exc_info=True)
            self._broken.set()
            self._stopping.set()
            return False
        return True

    def _handle(self, work: PartitionWork, message: Message, event: TrackingEvent | None, failure: Exception | None) -> None:
        if work.released:
            return
        provenance = event.provenance if event is not None else None
        token = REQUEST_ID.set(provenance.request_id if provenance is not None else None)
        try:
            finished = self._handle_event(work, message, event, failure)
        finally:
            REQUEST_ID.reset(token)
        if finished:
            self.inflight.finish(work, message.offset())

    def _handle_event(self, work: PartitionWork, message: Message, event: TrackingEvent | None, failure: Exception | None) -> bool:
        """Call the receivers (or dead-letter an undecodable record); False if the partition was released first."""
        if event is None:
            if not self._dead_letter(work, message, DECODE, failure or ValueError("undecodable"), attempts=1):
                return False
            self.metrics.finished("undecodable", None, None)
            return True
        if not self.window.claim(event.dedupe_id):
            log.info("dropping %s: handled in this process recently (dedupe window)", event.dedupe_id)
            self.metrics.finished("duplicate", None, None)
            return True
        started = time.perf_counter()
        outcome = "handled"
        try:
            for connection, error in self.dispatcher.deliver(event, _receiver_kwargs(message, event)):
                if not self._dead_letter(work, message, connection.name, error, self.settings.consumer_max_attempts):
                    return False
                outcome = "dead_lettered"
            self.window.add(event.dedupe_id)
        finally:
            self.window.forget(event.dedupe_id)
        self.metrics.finished(outcome, event, started)
        return True

    def _dead_letter(self, work: PartitionWork, message: Message, receiver: str, error: Exception, attempts: int) -> bool:
        """True once the letter is acknowledged; False if the partition was released first."""
        log.warning(
            "dead-lettering %s[%d]@%d for %s after %d attempt(s): %s: %s",
            message.topic(), message.partition(), message.offset(), receiver, attempts, type(error).__name__, error,
            extra={"group": self.group, "receiver": receiver, "error_class": type(error).__name__,
                   "partition": message.partition(), "offset": message.offset()},
        )
        headers = group_dead_letter_headers(message, self.group, receiver, error, attempts)
        written = self.dead_letters.write(
            self.dlq_topic, message.value(), message.key(), headers, give_up=lambda: work.released
        )
        if written is not None:
            self.metrics.dead_lettered(receiver)
        return written is not None


def group_dead_letter_headers(message: Message, group: str, receiver: str, error: Exception, attempts: int) -> raw.Headers:
    """A consumer group's dead letter: which group and receiver failed, after how many calls."""
    return raw.dead_letter_headers(
        message,
        error,
        [
            (raw.DLQ_GROUP, group.encode()),
            (raw.DLQ_RECEIVER, receiver.encode()),
            (raw.DLQ_ATTEMPTS, str(attempts).encode()),
        ],
    )


def _receiver_kwargs(message: Message, event: TrackingEvent) -> dict[str, Any]:
    return {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "dedupe_id": event.dedupe_id,
    }


def _max_poll_interval_ms(settings: ConsumerSettings, concurrency: int) -> int:
    """Long enough for a rebalance to wait out every event read ahead exhausting every retry."""
    backoff, total = settings.consumer_retry_backoff_seconds, 0.0
    for _ in range(settings.consumer_max_attempts - 1):
        total += backoff
        backoff = min(backoff * 2, settings.consumer_retry_backoff_max_seconds)
    worst_seconds = settings.consumer_batch_size * (total + 1.0) / concurrency + 60
    return min(max(300_000, int(worst_seconds * 1000)), 86_400_000)


def run(
    group: str, signal: Signal = tracking, settings: ConsumerSettings | None = None, concurrency: int | None = None
) -> None:
    run_until_signalled(TrackingConsumer(group, signal, settings, concurrency), log)
