"""Message status and suppressions as values that merge: the same events give the same state, in any order.

Each state is a join of its events: per event type the earliest and latest event
time, the set of dedupe ids, per suppression reason the latest event. Joining is
commutative, associative and idempotent, so a duplicate, a replay, events read
out of order or a state read back from its topic and joined again all give the
same state. What a user reads (``status``, ``reason``) is computed from the
joined state by the tables below, never carried over from arrival order.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from espstream.schemas import TrackingEvent

# The precedence of a message's status, highest first: the status is the seen event type of
# the highest tier, within it the one whose latest event time is latest (on a tie: listed first).
# A terminal status stays whatever is seen later (an open after a bounce is recorded in the
# times only); a late `delivered` never hides a `bounced`; a `deferred` read after `delivered`
# does not take it back.
PRECEDENCE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("terminal", ("bounced", "rejected", "failed", "complained", "unsubscribed", "inbound_failed")),
    ("engaged", ("clicked", "opened")),
    ("delivered", ("delivered", "autoresponded")),
    ("in flight", ("deferred", "sent", "queued")),
    ("other", ("subscribed", "inbound", "unknown")),
)
_TIER = {event_type: len(PRECEDENCE) - tier for tier, (_name, types) in enumerate(PRECEDENCE) for event_type in types}
_LISTED = {event_type: position for position, event_type in enumerate(t for _name, types in PRECEDENCE for t in types)}

# Only these suppress an address (anymail's `bounced` is a hard bounce; `deferred` is temporary),
# highest first: the reason shown when several apply.
SUPPRESSING = ("complained", "bounced", "rejected", "unsubscribed")
# A `subscribed` event later than the latest `unsubscribed` lifts that one reason, and no other.
SUBSCRIBED = "subscribed"
LIFTED_BY_SUBSCRIBE = "unsubscribed"

# The time of an event that has neither an event time nor a receive time.
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def event_time(event: TrackingEvent) -> datetime:
    """The ESP's event time; the gateway's receive time for an ESP that gives none."""
    provenance = event.provenance
    return event.timestamp or (provenance.received_at if provenance is not None else None) or NO_TIME


def esp_slug(event: TrackingEvent) -> str:
    return event.provenance.esp if event.provenance is not None and event.provenance.esp else event.esp_name.lower()


def status_key(esp: str, message_id: str) -> str:
    """The key of a message's status on the status topic: ``postmark:MSGID``."""
    return f"{esp}:{message_id}"


def address_key(address: str) -> str:
    """The key of an address on the suppressions topic: the address lower-cased."""
    return address.strip().lower()


@dataclass(frozen=True)
class MessageStatus:
    """One message's status: its recipient, ESP, status by PRECEDENCE, the first time of each event type seen."""

    esp: str
    message_id: str
    recipient: str | None
    status: str
    times: dict[str, datetime]  # event type -> its earliest event time
    last_event_at: datetime | None
    events: int  # distinct events (dedupe ids)
    last_times: dict[str, datetime] = field(default_factory=dict)  # event type -> its latest event time
    recipients: tuple[str, ...] = ()  # sorted; a message id some ESPs share among a send's recipients
    dedupe_ids: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return status_key(self.esp, self.message_id)


def message_status(
    esp: str,
    message_id: str,
    first: dict[str, datetime],
    last: dict[str, datetime],
    recipients: frozenset[str] | tuple[str, ...],
    dedupe_ids: frozenset[str],
) -> MessageStatus:
    """The status these merge fields give: every derived field computed here, and only here."""
    ordered = tuple(sorted(set(recipients)))
    return MessageStatus(
        esp=esp,
        message_id=message_id,
        recipient=ordered[0] if ordered else None,
        status=status_of(last),
        times=dict(sorted(first.items())),
        last_event_at=max(last.values(), default=None),
        events=len(dedupe_ids),
        last_times=dict(sorted(last.items())),
        recipients=ordered,
        dedupe_ids=frozenset(dedupe_ids),
    )


def status_of(last: dict[str, datetime]) -> str:
    """The status by PRECEDENCE from each seen type's latest time; ``unknown`` when nothing was seen."""
    if not last:
        return "unknown"
    # A type PRECEDENCE does not list (a newer schema's) ranks with "other", after every listed one.
    return max(last, key=lambda t: (_TIER.get(t, 1), last[t], -_LISTED.get(t, len(_LISTED)), t))


def status_from_event(event: TrackingEvent) -> MessageStatus | None:
    """The status of one event alone; None for an event without a message id (it has no status key)."""
    if not event.message_id:
        return None
    when = event_time(event)
    recipients = frozenset([event.recipient]) if event.recipient else frozenset()
    times = {event.event_type: when}
    return message_status(esp_slug(event), event.message_id, times, times, recipients, frozenset([event.dedupe_id]))


def join_status(a: MessageStatus, b: MessageStatus) -> MessageStatus:
    """Both states in one: per type the earlier first time and the later last time, every id and recipient."""
    first, last = dict(a.times), dict(a.last_times)
    for event_type, when in b.times.items():
        first[event_type] = min(first.get(event_type, when), when)
    for event_type, when in b.last_times.items():
        last[event_type] = max(last.get(event_type, when), when)
    return message_status(a.esp, a.message_id, first, last, a.recipients + b.recipients, a.dedupe_ids | b.dedupe_ids)


@dataclass(frozen=True, order=True)
class Evidence:
    """The latest event of one suppression reason; ordered by time, then dedupe id, so the latest is ``max``."""

    at: datetime
    dedupe_id: str
    reason: str = field(compare=False)
    esp: str = field(compare=False)
    message_id: str | None = field(compare=False)


@dataclass(frozen=True)
class Suppression:
    """Whether to stop mailing an address: ``reason`` is None when nothing suppresses it (an unsubscribe lifted)."""

    address: str
    reason: str | None
    at: datetime | None
    esp: str | None
    message_id: str | None
    evidence: tuple[Evidence, ...] = ()  # the latest event of each reason, in SUPPRESSING's order
    subscribed_at: datetime | None = None


def suppression(address: str, evidence: dict[str, Evidence], subscribed_at: datetime | None) -> Suppression:
    """The suppression these merge fields give: the first reason of SUPPRESSING that applies."""
    ordered = tuple(evidence[reason] for reason in SUPPRESSING if reason in evidence)
    deciding = next((each for each in ordered if not _lifted(each, subscribed_at)), None)
    if deciding is None:
        return Suppression(address, None, None, None, None, ordered, subscribed_at)
    return Suppression(address, deciding.reason, deciding.at, deciding.esp, deciding.message_id, ordered, subscribed_at)


def _lifted(evidence: Evidence, subscribed_at: datetime | None) -> bool:
    # Strictly later: an unsubscribe and a subscribe at the same moment leave the address suppressed.
    return evidence.reason == LIFTED_BY_SUBSCRIBE and subscribed_at is not None and subscribed_at > evidence.at


def suppression_from_event(event: TrackingEvent) -> Suppression | None:
    """The suppression state of one event alone; None for events that neither suppress nor lift, or name no address."""
    if not event.recipient or event.event_type not in (*SUPPRESSING, SUBSCRIBED):
        return None
    when = event_time(event)
    if event.event_type == SUBSCRIBED:
        return suppression(address_key(event.recipient), {}, when)
    found = Evidence(when, event.dedupe_id, event.event_type, esp_slug(event), event.message_id)
    return suppression(address_key(event.recipient), {event.event_type: found}, None)


def join_suppression(a: Suppression, b: Suppression) -> Suppression:
    """Both states in one: per reason the latest evidence, the latest subscribe."""
    evidence = {each.reason: each for each in a.evidence}
    for each in b.evidence:
        evidence[each.reason] = max(evidence.get(each.reason, each), each)
    subscribed = [when for when in (a.subscribed_at, b.subscribed_at) if when is not None]
    return suppression(a.address, evidence, max(subscribed, default=None))
