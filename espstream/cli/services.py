"""The long-running commands: ``run`` (the whole stack), ``gateway``, ``normalize``, ``consume``, ``registry``."""

import argparse
import sys

from .options import load_receivers, positive


def add(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("run", help="the whole stack, with an embedded broker and registry unless configured").set_defaults(func=_run)
    gateway = commands.add_parser("gateway", help="the webhook gateway (HTTP)")
    gateway.add_argument(
        "--workers",
        type=positive,
        metavar="N",
        help="processes serving the one port, each with its own Kafka producer (default: ESPSTREAM_GATEWAY_WORKERS, 1)",
    )
    gateway.set_defaults(func=_gateway)
    normalize = commands.add_parser("normalize", help="the normalizer: raw topic -> normalized topic")
    normalize.add_argument(
        "--processes",
        type=positive,
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
        type=positive,
        metavar="N",
        help="receiver calls in parallel; one message's events stay in order (default: ESPSTREAM_CONSUMER_CONCURRENCY, 1)",
    )
    consume.add_argument(
        "--allow-no-receivers",
        action="store_true",
        help="run even when no receiver is connected to the tracking signal: every event is committed unhandled",
    )
    consume.set_defaults(func=_consume)
    commands.add_parser("registry", help="the development schema registry").set_defaults(func=_registry)


def _run(args: argparse.Namespace) -> int:
    from espstream.stack import run_stack

    return run_stack()


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
    from espstream.consumers.signals import tracking

    if not args.modules and not args.django_settings:
        print("espstream consume: give receiver MODULE(s), --django-settings, or both", file=sys.stderr)
        return 2
    if not load_receivers("consume", args.modules, args.django_settings):
        return 2
    if not tracking.connections and not args.allow_no_receivers:
        # The group would commit every event having called nothing: its events would be lost to it.
        print(
            f"espstream consume: {', '.join(args.modules)} connect no receiver to espstream.consumers.tracking"
            " (a receiver of another signal is never called): group "
            f"{args.group} would commit every event unhandled. Name the module(s) defining @receiver(tracking)"
            " functions, or pass --allow-no-receivers",
            file=sys.stderr,
        )
        return 2
    run(args.group, concurrency=args.concurrency)
    return 0


def _registry(args: argparse.Namespace) -> int:
    from espstream.plumbing.config import RegistrySettings
    from espstream.registry import serve

    settings = RegistrySettings()
    serve(settings.registry_host, settings.registry_port, settings.kafka(), settings.registry_topic, idempotent=settings.kafka_idempotence)
    return 0
