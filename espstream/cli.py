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
    for module in args.modules:
        importlib.import_module(module)
    run(args.group)
    return 0


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
    consume.add_argument("modules", nargs="+", metavar="MODULE", help="module(s) whose @receiver(tracking) functions to call")
    consume.add_argument("--group", required=True, help="consumer group id: each group gets every event")
    consume.set_defaults(func=_consume)
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
