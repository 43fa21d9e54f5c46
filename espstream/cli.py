"""``espstream <command>``: wires the services to the command line."""

import argparse
import importlib
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka import Message

from espstream.plumbing.config import CommonSettings, RegistrySettings
from espstream.plumbing.times import millis, parse_time


def _gateway(args: argparse.Namespace) -> int:
    from espstream.gateway.app import ConfigurationError
    from espstream.gateway.server import serve

    try:
        return serve(workers=args.workers)
    except ConfigurationError as error:
        print(f"espstream gateway: {error}", file=sys.stderr)
        return 2


def _normalize(args: argparse.Namespace) -> int:
    from espstream.normalizer.service import run

    if args.processes > 1:
        from espstream.normalizer import processes

        return processes.run(args.processes)
    run()
    return 0


def _consume(args: argparse.Namespace) -> int:
    from espstream.consumers.runner import run

    sys.path.insert(0, ".")  # receiver modules are named like imports from the working directory
    if not args.modules and not args.django_settings:
        print("espstream consume: give receiver MODULE(s), --django-settings, or both", file=sys.stderr)
        return 2
    if args.django_settings:
        from espstream.consumers.django_bridge import DjangoUnavailable, setup

        try:
            setup(args.django_settings)  # before MODULEs: they may use the Django project's models
        except DjangoUnavailable as error:
            print(f"espstream consume: {error}", file=sys.stderr)
            return 2
    for module in args.modules:
        importlib.import_module(module)
    run(args.group, concurrency=args.concurrency)
    return 0


def _tail(args: argparse.Namespace) -> int:
    from espstream.consumers.tail import run

    try:
        return run(
            CommonSettings(),
            topic=args.topic,
            esps=_listed(args.esp),
            event_types=_listed(args.type),
            from_beginning=args.from_beginning,
            envelope=args.envelope,
        )
    except ValueError as error:  # an unknown ESP or event type
        print(f"espstream tail: {error}", file=sys.stderr)
        return 2


def _listed(values: list[str] | None) -> list[str] | None:
    """Repeated options and comma-separated lists alike: ``--esp a,b --esp c``."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()] if values else None


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return number


def _dlq_list(args: argparse.Namespace) -> int:
    import json

    from espstream.plumbing.deadletters import DeadLetterReader, group_letters, listing_json, listing_text, summary

    topic, group = _dead_letters(args.group)
    esp_of, fields = _letter_fields(args.group)
    with DeadLetterReader(CommonSettings().kafka(), topic, group, from_beginning=args.all) as reader:
        if args.letters:
            for letter in reader.letters():
                print(json.dumps(summary(letter, esp_of(letter)), ensure_ascii=False), flush=True)
            return 0
        groups = group_letters(reader.letters(), fields)
    if args.json:
        print(json.dumps(listing_json(topic, groups, pending_only=not args.all), ensure_ascii=False))
    else:
        print(listing_text(topic, groups, pending_only=not args.all), end="")
    return 0


def _letter_fields(group: str | None) -> "tuple[Callable[[Message], str | None], Callable[[Message], dict[str, str]]]":
    """How to find a letter's ESP beyond its headers, and what letters are grouped by."""
    if group is None:
        from espstream.normalizer.redrive import letter_fields

        return (lambda letter: None), letter_fields
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from espstream.plumbing.deadletters import event_esp, group_letter_fields
    from espstream.schemas.avro import EventDeserializer

    decode = EventDeserializer(SchemaRegistryClient(CommonSettings().registry()))
    return (lambda letter: event_esp(letter, decode)), group_letter_fields(decode)


def _dlq_show(args: argparse.Namespace) -> int:
    from espstream.plumbing.deadletters import NoSuchLetter, read_letter, render_letter

    topic, _group = _dead_letters(args.group)
    partition, offset = args.position
    try:
        letter = read_letter(CommonSettings().kafka(), topic, partition, offset)
    except NoSuchLetter as error:
        print(f"espstream dlq show: {error}", file=sys.stderr)
        return 1
    if args.raw:
        sys.stdout.buffer.write(letter.value() or b"")
        sys.stdout.buffer.flush()
        return 0
    decoded = None
    if args.group is not None:  # a group's letters hold an Avro event
        from confluent_kafka.schema_registry import SchemaRegistryClient

        from espstream.plumbing.deadletters import event_text
        from espstream.schemas.avro import EventDeserializer

        decoded = event_text(letter, EventDeserializer(SchemaRegistryClient(CommonSettings().registry())))
    print(render_letter(letter, decoded), end="")
    return 0


def _position(text: str) -> tuple[int, int]:
    """``PARTITION:OFFSET``, as ``dlq list`` prints them."""
    partition, _, offset = text.partition(":")
    try:
        position = int(partition), int(offset)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not PARTITION:OFFSET, e.g. 0:42") from None
    if min(position) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: partition and offset are not negative")
    return position


def _dlq_redrive(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    if args.group is None:
        if args.modules or args.django_settings:
            print("espstream dlq redrive: receiver MODULE(s) and --django-settings go with --group", file=sys.stderr)
            return 2
        return _normalizer_redrive(args)
    if args.esp or args.max_attempts is not None:
        print("espstream dlq redrive: --esp and --max-attempts are for the normalizer's dead letters (no --group)", file=sys.stderr)
        return 2
    if not args.modules and not args.django_settings:
        print("espstream dlq redrive: give the receiver MODULE(s) (or --django-settings) the group consumes with", file=sys.stderr)
        return 2
    from espstream.consumers.redrive import UnknownReceiver, redrive

    sys.path.insert(0, ".")
    if args.django_settings:
        from espstream.consumers.django_bridge import DjangoUnavailable, setup

        try:
            setup(args.django_settings)
        except DjangoUnavailable as error:
            print(f"espstream dlq redrive: {error}", file=sys.stderr)
            return 2
    for module in args.modules:
        importlib.import_module(module)
    try:
        for outcome in redrive(args.group):
            print(json.dumps(asdict(outcome)), flush=True)
    except UnknownReceiver as error:
        print(f"espstream dlq redrive: {error}", file=sys.stderr)
        return 1
    return 0


def _normalizer_redrive(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from espstream.normalizer.redrive import Tally, redrive
    from espstream.schemas.avro import registry_unreachable
    from espstream.schemas.esps import esp_slug

    try:
        esps = [esp_slug(name) for name in _listed(args.esp) or ()] or None
    except ValueError as error:
        print(f"espstream dlq redrive: {error}", file=sys.stderr)
        return 2
    tally = Tally()
    try:
        for outcome in redrive(esps=esps, max_attempts=args.max_attempts):
            tally.add(outcome)
            print(json.dumps(asdict(outcome), ensure_ascii=False), flush=True)
    except Exception as error:
        if not registry_unreachable(error):
            raise
        print(f"espstream dlq redrive: schema registry unreachable ({error}); nothing was redriven", file=sys.stderr)
        return 1
    for line in tally.lines():
        print(f"espstream dlq redrive: {line}", file=sys.stderr)
    return 0


def _dead_letters(group: str | None) -> tuple[str, str]:
    """A receiver group's dead-letter topic, else the normalizer's; and the group marking what was redriven."""
    from espstream.plumbing.deadletters import redrive_group

    if group is not None:
        from espstream.consumers.settings import ConsumerSettings

        return ConsumerSettings().group_dlq_topic(group), redrive_group(group)
    from espstream.normalizer.settings import NormalizerSettings

    settings = NormalizerSettings()
    return settings.dlq_topic, redrive_group(settings.normalizer_group)


def _registry(args: argparse.Namespace) -> int:
    from espstream.registry import serve

    settings = RegistrySettings()
    serve(settings.registry_host, settings.registry_port, settings.kafka(), settings.registry_topic)
    return 0


def _topics(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from espstream.consumers.settings import ConsumerSettings
    from espstream.plumbing.topics import ensure

    settings = ConsumerSettings()
    dead_letter_topics = [settings.group_dlq_topic(group) for group in _listed(args.group) or []]
    try:
        reports = ensure(settings, dead_letter_topics, fix=args.fix)
    except KafkaException as error:
        print(f"espstream topics ensure: {error.args[0].str()}", file=sys.stderr)
        return 1
    for report in reports:
        print(report.line(), flush=True)
    return 0 if all(report.as_wanted for report in reports) else 1


def _audit(args: argparse.Namespace) -> int:
    import json

    from espstream.normalizer.audit import AuditError, audit, render
    from espstream.normalizer.settings import NormalizerSettings

    try:
        report = audit(NormalizerSettings(), args.start, args.end, examples=args.examples)
    except AuditError as error:
        print(f"espstream audit: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return 0 if report.ok else 1


def _replay(args: argparse.Namespace) -> int:
    import json

    from confluent_kafka import KafkaException

    from espstream.normalizer.ranges import RangeError, RangeSpec, esp_slug, parse_offsets
    from espstream.normalizer.replay import ReplayError

    try:
        spec = RangeSpec(
            from_time=millis(args.start) if args.start else None,
            to_time=millis(args.end) if args.end else None,
            from_offsets=parse_offsets(_listed(args.from_offsets)) if args.from_offsets else None,
            to_offsets=parse_offsets(_listed(args.to_offsets)) if args.to_offsets else None,
        )
        esps = [esp_slug(name) for name in _listed(args.esp) or ()] or None
        if args.diff and (args.name or args.restart):
            raise RangeError("--diff writes nothing and keeps no checkpoint: --name and --restart do not apply")
        options = {"esps": esps, "to_topic": args.to_topic, "dlq_topic": args.dlq_topic}
        if args.diff:
            from espstream.normalizer.diff import Diff, format_report

            try:
                report = Diff(spec, **options).run()
            except KeyboardInterrupt:  # nothing was written: nothing to finish
                return 130
            print(json.dumps(report.as_json(), ensure_ascii=False) if args.json else format_report(report), flush=True)
            return 0
        from espstream.normalizer.replay import Replay, format_summary, run

        replay = Replay(spec, name=args.name, restart=args.restart, progress_interval=args.progress_interval, **options)
        summary = run(replay)
    except RangeError as error:
        print(f"espstream replay: {error}", file=sys.stderr)
        return 2
    except (KafkaException, ReplayError) as error:
        print(f"espstream replay: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary.as_json()) if args.json else format_summary(summary), flush=True)
    return 130 if summary.status == "interrupted" else 0


def _export(args: argparse.Namespace) -> int:
    from espstream.consumers.export import Exporter, ExportError

    try:
        exporter = Exporter(
            CommonSettings(),
            args.out,
            topic=args.topic,
            start=args.start,
            end=args.end,
            compression_level=args.compression_level,
            skip_undecodable=args.skip_undecodable,
            verify=args.verify,
        )
    except ValueError as error:
        print(f"espstream export: {error}", file=sys.stderr)
        return 2
    try:
        summary = exporter.run()
    except ExportError as error:
        print(f"espstream export: {error}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()), flush=True)
    return 0


def _run(args: argparse.Namespace) -> int:
    from .stack import run_stack

    return run_stack()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="espstream",
        description="ESP tracking webhooks in, normalized Avro events out. Settings: ESPSTREAM_* variables.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("run", help="the whole stack, with an embedded broker and registry unless configured").set_defaults(func=_run)
    gateway = commands.add_parser("gateway", help="the webhook gateway (HTTP)")
    gateway.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="processes serving the one port, each with its own Kafka producer (default: ESPSTREAM_GATEWAY_WORKERS, 1)",
    )
    gateway.set_defaults(func=_gateway)
    normalize = commands.add_parser("normalize", help="the normalizer: raw topic -> normalized topic")
    normalize.add_argument(
        "--processes",
        type=_positive,
        default=1,
        metavar="N",
        help="run N members of the normalizer's group in processes of their own (one per core), metrics on"
        " ESPSTREAM_NORMALIZER_METRICS_PORT + 0..N-1 (default 1)",
    )
    normalize.set_defaults(func=_normalize)
    consume = commands.add_parser("consume", help="call the receivers in MODULE for every event of a consumer group")
    consume.add_argument("modules", nargs="*", metavar="MODULE", help="module(s) whose @receiver(tracking) functions to call")
    consume.add_argument(
        "--django-settings",
        metavar="SETTINGS_MODULE",
        help="set up this Django project and send every event on django-anymail's own tracking signal",
    )
    consume.add_argument("--group", required=True, help="consumer group id: each group gets every event")
    consume.add_argument(
        "--concurrency",
        type=_positive,
        metavar="N",
        help="receiver calls in parallel; one message's events stay in order (default: ESPSTREAM_CONSUMER_CONCURRENCY, 1)",
    )
    consume.set_defaults(func=_consume)
    tail = commands.add_parser("tail", help="print the normalized events as JSON lines (commits nothing)")
    tail.add_argument("--esp", action="append", metavar="ESP", help="only this ESP (slug or name); repeat or comma-separate")
    tail.add_argument("--type", action="append", metavar="TYPE", help="only this event type; repeat or comma-separate")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest event (default: only events that arrive from now on)")
    tail.add_argument("--envelope", "-J", action="store_true", help="wrap each event like kcat -J: topic, partition, offset, ts, headers, key, payload")
    tail.add_argument("--topic", help="another topic of Avro events, e.g. a group's dead letters (default: the normalized topic)")
    tail.set_defaults(func=_tail)
    dlq = commands.add_parser("dlq", help="dead letters: list them, redrive them after a fix")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlq_list = dlq_commands.add_parser(
        "list", help="the dead letters not yet redriven, counted by ESP and error (a table; --json, --letters)"
    )
    dlq_list.add_argument("--group", help="a receiver group's dead letters (default: the normalizer's)")
    dlq_list.add_argument("--all", action="store_true", help="also those redriven already")
    dlq_list_format = dlq_list.add_mutually_exclusive_group()
    dlq_list_format.add_argument("--json", action="store_true", help="the counts as one JSON document")
    dlq_list_format.add_argument("--letters", action="store_true", help="each letter as a JSON line: position, ESP, dlq-* headers")
    dlq_list.set_defaults(func=_dlq_list)
    dlq_show = dlq_commands.add_parser("show", help="one dead letter: every header and its body")
    dlq_show.add_argument("position", type=_position, metavar="PARTITION:OFFSET", help="as `dlq list` prints them, e.g. 0:42")
    dlq_show.add_argument("--group", help="a receiver group's dead letters (default: the normalizer's)")
    dlq_show.add_argument("--raw", action="store_true", help="write the body's exact bytes to stdout, nothing else")
    dlq_show.set_defaults(func=_dlq_show)
    dlq_redrive = dlq_commands.add_parser(
        "redrive",
        help="normalize the normalizer's dead letters again, or (--group) call a group's receivers again, after a fix",
    )
    dlq_redrive.add_argument("modules", nargs="*", metavar="MODULE", help="with --group: module(s) whose receivers the group runs")
    dlq_redrive.add_argument("--group", help="the receiver group whose dead letters to redrive (default: the normalizer's)")
    dlq_redrive.add_argument("--django-settings", metavar="SETTINGS_MODULE", help="with --group: as given to `consume`")
    dlq_redrive.add_argument(
        "--esp", action="append", metavar="ESP", help="only this ESP's letters (slug or name); repeat or comma-separate"
    )
    dlq_redrive.add_argument(
        "--max-attempts",
        type=_positive,
        metavar="N",
        help="leave letters already tried N times pending (the normalizer's first try counts)",
    )
    dlq_redrive.set_defaults(func=_dlq_redrive)
    commands.add_parser("registry", help="the development schema registry").set_defaults(func=_registry)
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
    topics_ensure.set_defaults(func=_topics)
    audit = commands.add_parser(
        "audit", help="check that every raw webhook in a time range has its events, its dead letter, or none by design"
    )
    audit.add_argument("--from", dest="start", metavar="TIME", type=_time, help="ISO 8601, UTC unless a zone is given (default: the oldest record)")
    audit.add_argument("--to", dest="end", metavar="TIME", type=_time, help="exclusive, ISO 8601 (default: the newest record)")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    audit.add_argument("--examples", type=_positive, default=5, metavar="N", help="missing records to show (default 5)")
    audit.set_defaults(func=_audit)
    replay = commands.add_parser(
        "replay", help="normalize a range of the raw topic again with the current normalizer (--diff: only show what changes)"
    )
    replay.add_argument("--from", dest="start", metavar="TIME", type=_time, help="ISO 8601, UTC unless a zone is given (default: the oldest record)")
    replay.add_argument("--to", dest="end", metavar="TIME", type=_time, help="exclusive, ISO 8601 (default: the end of each partition at the first start)")
    replay.add_argument(
        "--from-offsets", action="append", metavar="P:OFFSET", help="start offsets, e.g. 0:100,1:250; only the partitions named are read"
    )
    replay.add_argument("--to-offsets", action="append", metavar="P:OFFSET", help="end offsets (exclusive), e.g. 0:900,1:1200")
    replay.add_argument("--esp", action="append", metavar="ESP", help="only this ESP (slug or name); repeat or comma-separate")
    replay.add_argument("--to-topic", metavar="TOPIC", help="write the events here (default: the normalized topic)")
    replay.add_argument("--dlq-topic", metavar="TOPIC", help="write dead letters here (default: the normalizer's)")
    replay.add_argument("--name", help="the replay's checkpoint name (default: derived from the range, ESPs and topics)")
    replay.add_argument("--restart", action="store_true", help="start the named replay over, even if it finished")
    replay.add_argument("--diff", action="store_true", help="write nothing: compare the events now with those on the target topic")
    replay.add_argument("--json", action="store_true", help="print the summary or the diff as JSON")
    replay.add_argument(
        "--progress-interval", type=float, default=5.0, metavar="SECONDS", help="seconds between progress lines when not on a terminal"
    )
    replay.set_defaults(func=_replay)
    export = commands.add_parser(
        "export",
        help="write the normalized events of a time range as Avro files, a directory per event date",
        description=(
            "Write the events written to the normalized topic from --from until --to (record times: when the"
            " normalizer wrote them) as Avro container files OUT/date=YYYY-MM-DD/<topic>-p<partition>-<first>-<last>"
            "-schema<id>.avro, by the event's timestamp in UTC (else when the webhook was received, else date=unknown)."
            " Running the same range again writes the same files."
        ),
    )
    export.add_argument("--from", dest="start", metavar="TIME", type=_time, help="ISO 8601, UTC unless a zone is given (default: the oldest record)")
    export.add_argument("--to", dest="end", metavar="TIME", type=_time, help="exclusive, ISO 8601 (default: now)")
    export.add_argument("--out", required=True, metavar="DIR", help="the directory to write the date=... directories into")
    export.add_argument("--topic", help="another topic of Avro events (default: the normalized topic)")
    export.add_argument(
        "--compression-level", type=int, default=1, choices=range(10), metavar="0-9", help="deflate level (default 1: fastest)"
    )
    export.add_argument(
        "--skip-undecodable",
        action="store_true",
        help="leave out records no registered schema decodes, listing them (default: stop at the first)",
    )
    export.add_argument(
        "--verify", action="store_true", help="decode every record whole before writing it (slower; default: up to its date)"
    )
    export.set_defaults(func=_export)
    return top


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from espstream.plumbing.logs import configure

    try:
        configure()  # JSON lines unless stderr is a terminal (ESPSTREAM_LOG_FORMAT, ESPSTREAM_LOG_LEVEL)
    except ValidationError as error:
        print(f"espstream: {error}", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
