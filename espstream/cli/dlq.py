"""``espstream dlq list | show | redrive | discard``: the normalizer's dead letters, or (``--group``) a receiver group's."""

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from espstream.plumbing.config import CommonSettings

from .options import listed, load_receivers, position, positive

if TYPE_CHECKING:
    from confluent_kafka import Message

    from espstream.plumbing.discards import Discarded
    from espstream.schemas.avro import EventDeserializer


def add(commands: argparse._SubParsersAction) -> None:
    dlq = commands.add_parser("dlq", help="dead letters: list them, redrive them after a fix")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlq_list = dlq_commands.add_parser(
        "list", help="the dead letters not yet redriven, counted by ESP and error (a table; --json, --letters)"
    )
    dlq_list.add_argument("--group", help="a receiver group's dead letters (default: the normalizer's)")
    dlq_list.add_argument("--all", action="store_true", help="also those redriven or discarded already (discarded ones with why)")
    dlq_list_format = dlq_list.add_mutually_exclusive_group()
    dlq_list_format.add_argument("--json", action="store_true", help="the counts as one JSON document")
    dlq_list_format.add_argument("--letters", action="store_true", help="each letter as a JSON line: position, ESP, dlq-* headers")
    dlq_list.set_defaults(func=_list)
    dlq_show = dlq_commands.add_parser("show", help="one dead letter: every header and its body")
    dlq_show.add_argument("position", type=position, metavar="PARTITION:OFFSET", help="as `dlq list` prints them, e.g. 0:42")
    dlq_show.add_argument("--group", help="a receiver group's dead letters (default: the normalizer's)")
    dlq_show.add_argument("--raw", action="store_true", help="write the body's exact bytes to stdout, nothing else")
    dlq_show.set_defaults(func=_show)
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
        type=positive,
        metavar="N",
        help="leave letters already tried N times pending (the normalizer's first try counts)",
    )
    dlq_redrive.set_defaults(func=_redrive)
    dlq_discard = dlq_commands.add_parser(
        "discard", help="mark letters that will never succeed as done, keeping why (on <dead-letter topic>.discarded)"
    )
    dlq_discard.add_argument(
        "positions", nargs="+", type=position, metavar="PARTITION:OFFSET", help="pending letters, as `dlq list --letters` prints them"
    )
    dlq_discard.add_argument("--group", help="a receiver group's dead letters (default: the normalizer's)")
    dlq_discard.add_argument("--reason", required=True, help="why they will never succeed: kept with them, shown by list --all and show")
    dlq_discard.add_argument("--by", metavar="NAME", help="who discards them (default: the user running the command)")
    dlq_discard.set_defaults(func=_discard)


def _list(args: argparse.Namespace) -> int:
    from espstream.plumbing.deadletters import DeadLetterReader, group_letters, listing_json, listing_text, summary
    from espstream.plumbing.discards import discarded

    topic, group = _dead_letters(args.group)
    esp_of, fields = _letter_fields(args.group)
    marks = discarded(CommonSettings().kafka(), topic) if args.all else {}
    if marks:
        fields = _with_discards(fields, marks)
    with DeadLetterReader(CommonSettings().kafka(), topic, group, from_beginning=args.all) as reader:
        if args.letters:
            for letter in reader.letters():
                mark = marks.get((letter.partition(), letter.offset()))
                listed = {**summary(letter, esp_of(letter)), **(mark.as_json() if mark else {})}
                print(json.dumps(listed, ensure_ascii=False), flush=True)
            return 0
        groups = group_letters(reader.letters(), fields)
    if args.json:
        print(json.dumps(listing_json(topic, groups, pending_only=not args.all), ensure_ascii=False))
    else:
        print(listing_text(topic, groups, pending_only=not args.all), end="")
    return 0


def _with_discards(
    fields: "Callable[[Message], dict[str, str]]", marks: "dict[tuple[int, int], Discarded]"
) -> "Callable[[Message], dict[str, str]]":
    """``fields`` and, last, why a letter was discarded ("-": it was not)."""

    def with_discard(letter: "Message") -> dict[str, str]:
        mark = marks.get((letter.partition(), letter.offset()))
        return {**fields(letter), "discarded": mark.reason if mark else "-"}

    return with_discard


def _letter_fields(group: str | None) -> "tuple[Callable[[Message], str | None], Callable[[Message], dict[str, str]]]":
    """How to find a letter's ESP beyond its headers, and what letters are grouped by."""
    if group is None:
        from espstream.normalizer.redrive import letter_fields

        return (lambda letter: None), letter_fields
    from espstream.plumbing.deadletters import event_esp, group_letter_fields

    decode = _event_decoder()
    return (lambda letter: event_esp(letter, decode)), group_letter_fields(decode)


def _event_decoder() -> "EventDeserializer":
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from espstream.plumbing.discards import Discarded
    from espstream.schemas.avro import EventDeserializer

    return EventDeserializer(SchemaRegistryClient(CommonSettings().registry()))


def _show(args: argparse.Namespace) -> int:
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
        from espstream.plumbing.deadletters import event_text

        decoded = event_text(letter, _event_decoder())
    print(render_letter(letter, decoded), end="")
    from espstream.plumbing.discards import discarded

    mark = discarded(CommonSettings().kafka(), topic).get((partition, offset))
    if mark is not None:
        print(f"discarded: {mark.at} by {mark.by}: {mark.reason}")
    return 0


def _discard(args: argparse.Namespace) -> int:
    from espstream.plumbing.discards import NotPending, discard

    topic, group = _dead_letters(args.group)
    try:
        for outcome in discard(CommonSettings(), topic, group, args.positions, args.reason, args.by):
            print(json.dumps(asdict(outcome), ensure_ascii=False), flush=True)
    except NotPending as error:
        print(f"espstream dlq discard: no pending letter at {error} on {topic} (see `dlq list --letters`); nothing was discarded",
              file=sys.stderr)
        return 1
    return 0


def _redrive(args: argparse.Namespace) -> int:
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

    if not load_receivers("dlq redrive", args.modules, args.django_settings):
        return 2
    from espstream.consumers.redrive import FAILED_AGAIN

    failed = 0
    try:
        for outcome in redrive(args.group):
            failed += outcome.result == FAILED_AGAIN
            print(json.dumps(asdict(outcome)), flush=True)
    except UnknownReceiver as error:
        print(f"espstream dlq redrive: {error}", file=sys.stderr)
        return 1
    return _failed_again(failed)


def _normalizer_redrive(args: argparse.Namespace) -> int:
    from espstream.normalizer.redrive import Tally, redrive
    from espstream.schemas.avro import registry_unreachable
    from espstream.schemas.esps import esp_slug

    try:
        esps = [esp_slug(name) for name in listed(args.esp) or ()] or None
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
    return _failed_again(tally.failed_again)


def _failed_again(letters: int) -> int:
    """1 when letters failed again, for scripts and CI; the letters are back on the topic, pending."""
    if letters:
        print(f"espstream dlq redrive: {letters} letter{'' if letters == 1 else 's'} failed again", file=sys.stderr)
        return 1
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
