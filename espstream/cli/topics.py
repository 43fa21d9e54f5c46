"""``espstream topics ensure``: create the pipeline's topics, check the existing ones."""

import argparse
import sys

from .options import listed


def add(commands: argparse._SubParsersAction) -> None:
    topics = commands.add_parser("topics", help="manage the pipeline's topics")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    topics_ensure = topic_commands.add_parser(
        "ensure",
        help="create the missing topics, check the existing ones",
        description=(
            "Create the raw, normalized and dead-letter topics if missing, and check the existing ones' partitions,"
            " replication factor, retention.ms, retention.bytes and max.message.bytes against the ESPSTREAM_*"
            " settings. One line per topic: created, ok, fixed, differs (what is, what is wanted), unverified"
            " (a setting the broker does not report) or error. Existing topics are changed only with --fix."
        ),
        epilog="Exit status: 0 if every topic is as wanted; 1 if one differs or could not be checked, or the broker is unreachable.",
    )
    topics_ensure.add_argument(
        "--group",
        action="append",
        metavar="GROUP",
        help="also the dead-letter topic of this receiver group (tracking.normalized.dlq.GROUP); repeat or comma-separate",
    )
    topics_ensure.add_argument(
        "--fix",
        action="store_true",
        help="set differing configs and add missing partitions to existing topics (partitions are never removed;"
        " adding some moves keys to other partitions, so a message's events written before and after may be"
        " read out of order)",
    )
    topics_ensure.set_defaults(func=_ensure)


def _ensure(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from espstream.consumers.settings import ConsumerSettings
    from espstream.plumbing.topics import ensure

    settings = ConsumerSettings()
    dead_letter_topics = [settings.group_dlq_topic(group) for group in listed(args.group) or []]
    try:
        reports = ensure(settings, dead_letter_topics, fix=args.fix)
    except KafkaException as error:
        print(f"espstream topics ensure: {error.args[0].str()}", file=sys.stderr)
        return 1
    for report in reports:
        print(report.line(), flush=True)
    return 0 if all(report.as_wanted for report in reports) else 1
