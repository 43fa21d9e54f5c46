"""``espstream group reset``: move a consumer group's committed offsets, as ``kafka-consumer-groups --reset-offsets``.

A dry run unless ``--execute``: it prints each partition's current and new offset.
Positions are decided by reading (plumbing.reader): the embedded broker's
ListOffsets(latest) and offsets_for_times answers are wrong, Kafka's are not
needed. A group with active members is refused: Kafka rejects commits from
outside a live group, and a member would overwrite them at its next commit.
"""

import argparse
import sys

from confluent_kafka import KafkaError

from espstream.plumbing.config import CommonSettings

from .options import listed, position, time

# What a broker answers a commit from outside a group that has members.
MEMBERS_ONLY = {KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS}


def add(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("group", help="consumer groups: move their offsets (reset)")
    actions = group.add_subparsers(dest="group_command", required=True, metavar="ACTION")
    reset = actions.add_parser(
        "reset",
        help="move a group's committed offsets on the normalized topic (a dry run unless --execute)",
        description="Print each partition's current and new offset of --group; --execute commits the new ones."
        " The group must have no active members: stop its consumers first.",
    )
    reset.add_argument("--group", required=True, help="the consumer group id, as given to `consume --group`")
    reset.add_argument("--topic", help="the topic whose offsets to move (default: the normalized topic)")
    to = reset.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-earliest", action="store_true", help="each partition's first record: everything is handled again")
    to.add_argument("--to-latest", action="store_true", help="each partition's end: everything so far is skipped")
    to.add_argument("--to-time", type=time, metavar="TIME", help="the first record written at or after TIME (ISO 8601, UTC unless a zone is given)")
    to.add_argument(
        "--to-offsets", action="append", metavar="P:OFFSET", help="these offsets, e.g. 0:100,1:250; only the partitions named move"
    )
    reset.add_argument("--execute", action="store_true", help="commit the new offsets (default: only print them)")
    reset.set_defaults(func=_reset)


def _reset(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from espstream.plumbing.reader import NoSuchTopic

    settings = CommonSettings()
    topic = args.topic or settings.normalized_topic
    try:
        wanted = dict(position(text) for text in listed(args.to_offsets) or ()) if args.to_offsets else None
    except argparse.ArgumentTypeError as error:
        print(f"espstream group reset: {error}", file=sys.stderr)
        return 2
    try:
        active = _active(settings, args.group)
        if active:
            return _refuse_active(args.group, active)
        current, new = _positions(settings, topic, args, wanted)
        print(_table(args.group, topic, current, new), end="")
        if not args.execute:
            print("dry run: nothing was changed; --execute commits the new offsets")
            return 0
        _commit(settings, args.group, topic, new)
    except NoSuchTopic:
        print(f"espstream group reset: topic {topic!r} does not exist", file=sys.stderr)
        return 1
    except KafkaException as error:
        if error.args[0].code() in MEMBERS_ONLY:  # a member joined meanwhile
            return _refuse_active(args.group, "active members")
        print(f"espstream group reset: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"espstream group reset: {error}", file=sys.stderr)
        return 1
    print(f"committed the new offsets of group {args.group} on {topic}")
    return 0


def _refuse_active(group: str, why: str) -> int:
    print(
        f"espstream group reset: group {group} has {why}; Kafka takes offsets only for a group without members:"
        " stop its consumers, then reset",
        file=sys.stderr,
    )
    return 1


def _active(settings: CommonSettings, group: str) -> str | None:
    """Why ``group`` counts as active now (its members, or its state), else None."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(settings.kafka())  # kept until the answer: a dropped client never answers
    [future] = admin.describe_consumer_groups([group], request_timeout=30).values()
    described = future.result()
    if described.members:
        return f"{len(described.members)} active member{'' if len(described.members) == 1 else 's'}"
    # The embedded broker lists no members of a live group, only its state.
    if described.state not in (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD, ConsumerGroupState.UNKNOWN):
        return f"active members (state {described.state.name.lower()})"
    return None


def _positions(
    settings: CommonSettings, topic: str, args: argparse.Namespace, wanted: dict[int, int] | None
) -> tuple[dict[int, int | None], dict[int, int]]:
    """Per partition, the group's committed offset (None: none) and the new one, decided by reading."""
    from confluent_kafka import TopicPartition

    from espstream.plumbing.reader import TopicReader
    from espstream.plumbing.times import millis

    with TopicReader({**settings.kafka(), "group.id": args.group}, topic) as reader:
        partitions = reader.partitions()
        if wanted is not None:
            unknown = sorted(set(wanted) - set(partitions))
            if unknown:
                raise ValueError(f"{topic} has no partition {', '.join(map(str, unknown))}")
            partitions = sorted(wanted)
        committed = reader.consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        current = {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in committed}
        bounds = reader.bounds(partitions, offsets=wanted, since=millis(args.to_time) if args.to_time else None)
    return current, {p: end if args.to_latest else start for p, (start, end) in bounds.items()}


def _table(group: str, topic: str, current: dict[int, int | None], new: dict[int, int]) -> str:
    header = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]
    rows = [[group, topic, str(p), "-" if current.get(p) is None else str(current[p]), str(offset)] for p, offset in sorted(new.items())]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    return "".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n" for row in [header, *rows])


def _commit(settings: CommonSettings, group: str, topic: str, offsets: dict[int, int]) -> None:
    from confluent_kafka import Consumer, TopicPartition

    # A consumer that never subscribes: its commit is the group's offsets, no join.
    consumer = Consumer({**settings.kafka(), "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in sorted(offsets.items())], asynchronous=False)
    finally:
        consumer.close()
