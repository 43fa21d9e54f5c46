"""``espstream status``: the service keeping each message's status and each suppression on compacted topics."""

import argparse


def add(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        "status",
        help="keep each message's status and each suppressed address on compacted topics (a consumer group)",
        description=(
            "Joins consumer group ESPSTREAM_STATUS_GROUP (espstream-status) on the normalized topic and keeps, on the"
            " compacted topics ESPSTREAM_STATUS_TOPIC (tracking.status) and ESPSTREAM_SUPPRESSIONS_TOPIC"
            " (tracking.suppressions), each message's status and each suppressed address. Read them with"
            " espstream.consumers.status.StatusView."
        ),
    )
    status.add_argument("--group", help="consumer group id (default: ESPSTREAM_STATUS_GROUP, espstream-status)")
    status.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    from espstream.consumers.status.service import run
    from espstream.consumers.status.settings import StatusSettings

    settings = StatusSettings()
    if args.group:
        settings = settings.model_copy(update={"status_group": args.group})
    run(settings)
    return 0
