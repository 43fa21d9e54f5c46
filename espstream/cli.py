"""``espstream <command>``: wires the services to the command line."""

import argparse
import importlib
import logging
import sys

from .config import CommonSettings, RegistrySettings


def _gateway(args: argparse.Namespace) -> int:
    from gateway.app import ConfigurationError
    from gateway.server import serve

    try:
        serve()
    except ConfigurationError as error:
        print(f"espstream gateway: {error}", file=sys.stderr)
        return 2
    return 0


def _normalize(args: argparse.Namespace) -> int:
    from normalizer.service import run

    run()
    return 0


def _consume(args: argparse.Namespace) -> int:
    from consumers.runner import run

    sys.path.insert(0, ".")  # receiver modules are named like imports from the working directory
    if not args.modules and not args.django_settings:
        print("espstream consume: give receiver MODULE(s), --django-settings, or both", file=sys.stderr)
        return 2
    if args.django_settings:
        from consumers.django_bridge import DjangoUnavailable, setup

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
    from consumers.tail import run

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


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return number


def _dlq_list(args: argparse.Namespace) -> int:
    import json

    from .deadletters import DeadLetterReader, summary

    topic, group = _dead_letters(args.group)
    with DeadLetterReader(CommonSettings().kafka(), topic, group, from_beginning=args.all) as reader:
        for letter in reader.letters():
            print(json.dumps(summary(letter), ensure_ascii=False), flush=True)
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    if args.group is None:
        print("espstream dlq redrive: give --group (the normalizer's dead letters cannot be redriven yet)", file=sys.stderr)
        return 2
    if not args.modules and not args.django_settings:
        print("espstream dlq redrive: give the receiver MODULE(s) (or --django-settings) the group consumes with", file=sys.stderr)
        return 2
    from consumers.redrive import UnknownReceiver, redrive

    sys.path.insert(0, ".")
    if args.django_settings:
        from consumers.django_bridge import DjangoUnavailable, setup

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


def _dead_letters(group: str | None) -> tuple[str, str]:
    """A receiver group's dead-letter topic, else the normalizer's; and the group marking what was redriven."""
    from .deadletters import redrive_group

    if group is not None:
        from consumers.settings import ConsumerSettings

        return ConsumerSettings().group_dlq_topic(group), redrive_group(group)
    from normalizer.settings import NormalizerSettings

    settings = NormalizerSettings()
    return settings.dlq_topic, redrive_group(settings.normalizer_group)


def _registry(args: argparse.Namespace) -> int:
    from schemas.registry import serve

    settings = RegistrySettings()
    serve(settings.registry_host, settings.registry_port, settings.kafka(), settings.registry_topic)
    return 0


def _topics(args: argparse.Namespace) -> int:
    from .topics import ensure_topics

    settings = CommonSettings()
    created = ensure_topics(settings)
    for name in (settings.raw_topic, settings.normalized_topic, settings.dlq_topic):
        print(f"{name}: {'created' if name in created else 'exists'}")
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
    commands.add_parser("gateway", help="the webhook gateway (HTTP)").set_defaults(func=_gateway)
    commands.add_parser("normalize", help="the normalizer: raw topic -> normalized topic").set_defaults(func=_normalize)
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
    dlq_list = dlq_commands.add_parser("list", help="print the dead letters not yet redriven as JSON lines")
    dlq_list.add_argument("--group", help="a receiver group's dead letters (default: the normalizer's)")
    dlq_list.add_argument("--all", action="store_true", help="also those redriven already")
    dlq_list.set_defaults(func=_dlq_list)
    dlq_redrive = dlq_commands.add_parser(
        "redrive", help="call the receiver named in each dead letter of a group again, after a fix"
    )
    dlq_redrive.add_argument("modules", nargs="*", metavar="MODULE", help="module(s) whose receivers the group runs")
    dlq_redrive.add_argument("--group", help="the receiver group whose dead letters to redrive")
    dlq_redrive.add_argument("--django-settings", metavar="SETTINGS_MODULE", help="as given to `consume`")
    dlq_redrive.set_defaults(func=_dlq_redrive)
    commands.add_parser("registry", help="the development schema registry").set_defaults(func=_registry)
    topics = commands.add_parser("topics", help="manage the pipeline's topics")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    topic_commands.add_parser("ensure", help="create the raw, normalized and dead-letter topics if missing").set_defaults(func=_topics)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The schema-registry client logs every HTTP request at INFO.
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
