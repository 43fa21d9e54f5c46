"""Differential fuzzing: mutated fixtures through django-anymail and ``normalize()``.

For every implemented ESP, requests are derived from its fixtures by mutating
them the way a real ESP (or a proxy, or a version change) might: a key dropped,
a value made null, another JSON type, numeric text, empty, non-ASCII, very long
or an object; batch items duplicated, dropped or reordered; event type names
swapped for other known names or an unknown one; form fields added, removed or
repeated. JSON text inside the body (Amazon SES's Message, Mandrill's
mandrill_events, Mailgun's message-headers) is mutated inside as well.

Each request must be handled as the parser contract says:

- anymail gives events: ours equal them (with the contract's departures), or we
  raise MalformedPayload because one of anymail's values cannot be put in the
  contract's types (an object in a text field, metadata that is not an object...);
- anymail refuses the request as misconfigured: we raise MisconfiguredWebhook;
- anymail crashes: we give events or raise a NormalizeError;
- never any other exception.

The committed run is small and derandomized (CI is deterministic); hunt with
``ESPSTREAM_FUZZ_EXAMPLES=2000`` (and ``ESPSTREAM_FUZZ_RANDOM=1`` for fresh
examples each run, ``ESPSTREAM_FUZZ_MUTATIONS=8`` for more mutations per request).
"""

import copy
import json
import os
from datetime import datetime, timezone
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from espstream import normalizer
from espstream.normalizer.esps import PARSERS
from tests.support.parity.compare import FIELDS, TEXT_FIELDS, differences, our_fields, same_field
from tests.support.parity.fixtures import FIXTURES_DIR, fixtures_for, from_spec
from tests.support.parity.harness import anymail_expected, avro_round_trip, run_anymail, run_ours
from tests.support.parity.oracle import anymail_view, django_request

EXAMPLES = int(os.environ.get("ESPSTREAM_FUZZ_EXAMPLES", "30"))
DERANDOMIZE = os.environ.get("ESPSTREAM_FUZZ_RANDOM", "") == ""
# Mutations per request, at most (more explores combinations, fewer keeps requests near real ones).
MAX_MUTATIONS = int(os.environ.get("ESPSTREAM_FUZZ_MUTATIONS", "4"))

IMPLEMENTED = sorted(PARSERS)

# A path step that decodes JSON text, mutates inside it and encodes it again.
JSON_TEXT = object()
# The catalog's key for objects seen as items of an array (batch events).
BATCH_ITEM = ("batch item",)

UNKNOWN_NAME = "espstream_unheard_of_event"

# Values any field may be set to: each a plausible way for an ESP to send a value oddly.
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1461261330,
    1461261330.5,
    2**70,
    1e300,
    -0.0,
    "",
    " ",
    "0",
    "1461261330",
    "1461261330.25",
    "1.461261330e9",
    "2016-04-21T18:03:24.123Z",
    "2016-04-21 18:03:24",
    "Zoë ☃ 日本語 <zoë@exämple.de>",
    "ünïcödé",
    "x" * 5000,
    "null",
    "true",
    "[]",
    "{}",
    [],
    {},
    ["a", "b"],
    [None],
    [1, "two", None],
    {"nested": {"object": ["with", 1, None]}},
    {"a": "b"},
    UNKNOWN_NAME,
    # Numbers at the edges of what timestamps and ids are read from.
    0.0,
    2.5,
    1e20,
    -1e11,
    float("nan"),
    float("inf"),
    "-1",
    "0.0",
    " 1461261330 ",
    "NaN",
    "inf",
    "1e400",
    # Text that is almost an address, a message id, a flag.
    "<0>",
    "a@b@example.com",
    "Name <a@example.com>, b@example.com",
    "\t",
    "None",
    "False",
]


def _seed_specs(slug: str) -> list[dict[str, Any]]:
    """The fixture specs whose body is JSON or a form (what can be mutated structurally)."""
    specs = []
    for path in sorted((FIXTURES_DIR / slug).glob("*.json")):
        spec = json.loads(path.read_text(encoding="utf-8"))
        if "body" in spec or "form" in spec:
            spec.pop("expect", None)
            specs.append(spec)
    return specs


def _json_text(value: Any) -> Any:
    """The JSON object or array a text value holds, else None."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            decoded = json.loads(value)
        except ValueError:
            return None
        if isinstance(decoded, (dict, list)):
            return decoded
    return None


def _walk(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, node) in a JSON value, descending into JSON text."""
    nodes = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            nodes += _walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            nodes += _walk(item, (*path, index))
    else:
        decoded = _json_text(value)
        if decoded is not None:
            nodes += _walk(decoded, (*path, JSON_TEXT))
    return nodes


def _catalog(specs: list[dict[str, Any]]) -> dict[Any, list[Any]]:
    """Every value seen under each key in the ESP's fixtures (other known event names, fields...)."""
    seen: dict[Any, list[Any]] = {}
    for spec in specs:
        roots = [spec["body"]] if "body" in spec else [item[1] for item in spec["form"]]
        for field in (item for item in spec.get("form", []) if len(item) == 2):
            _remember(seen, ("form", field[0]), field[1])
        for root in roots:
            for path, node in _walk(root):
                if path and path[-1] is not JSON_TEXT and not isinstance(path[-1], int):
                    _remember(seen, path[-1], node)
                elif path and isinstance(path[-1], int) and isinstance(node, dict):
                    _remember(seen, BATCH_ITEM, node)  # an event of a batch, for other batches
    return seen


def _remember(seen: dict[Any, list[Any]], key: Any, value: Any) -> None:
    values = seen.setdefault(key, [])
    if value not in values and len(values) < 40:
        values.append(value)


def _modify(root: Any, path: tuple[Any, ...], change: Any) -> Any:
    """``root`` with ``change(parent, key)`` applied where ``path`` leads (a copy)."""
    if not path:
        holder = [copy.deepcopy(root)]
        change(holder, 0)
        return holder[0] if holder else None
    root = copy.deepcopy(root)
    return _modify_in(root, path, change)


def _modify_in(node: Any, path: tuple[Any, ...], change: Any) -> Any:
    step, rest = path[0], path[1:]
    if step is JSON_TEXT:
        inner = _modify(json.loads(node), rest, change)
        return json.dumps(inner, ensure_ascii=False)
    if not rest:
        change(node, step)
        return node
    if rest[0] is JSON_TEXT:
        node[step] = _modify_in(node[step], rest, change)
        return node
    _modify_in(node[step], rest, change)
    return node


@st.composite
def _value_for(draw: st.DrawFn, key: Any, catalog: dict[Any, list[Any]]) -> Any:
    known = catalog.get(key, [])
    other_keys = [values for name, values in catalog.items() if not isinstance(name, tuple)]
    choices = [st.sampled_from(ODD_VALUES)]
    if known:
        choices.append(st.sampled_from(known))
    if other_keys:
        choices.append(st.sampled_from(other_keys).flatmap(st.sampled_from))
    choices.append(st.text(max_size=12))
    return draw(st.one_of(choices))


@st.composite
def _mutated_json(draw: st.DrawFn, body: Any, catalog: dict[Any, list[Any]]) -> Any:
    """One structural or value mutation somewhere in ``body``."""
    nodes = _walk(body)
    path, node = draw(st.sampled_from(nodes))
    key = next((step for step in reversed(path) if step is not JSON_TEXT and not isinstance(step, int)), None)
    kinds = ["set", "set", "drop"]
    if isinstance(node, list) and node:
        kinds += ["duplicate_item", "reorder", "drop_item"]
    if isinstance(node, list) and catalog.get(BATCH_ITEM):
        kinds.append("insert_item")
    if isinstance(node, dict):
        kinds += ["graft", "graft"]
    if path and isinstance(path[-1], str):
        kinds.append("recase_key")
    kind = draw(st.sampled_from(kinds))

    if kind == "recase_key":
        # The same field in another letter case (header names especially).
        recase = draw(st.sampled_from([str.lower, str.upper, str.title, str.swapcase]))

        def change(parent: Any, step: Any) -> None:
            parent[recase(step)] = parent.pop(step)

        return _modify(body, path, change)

    if kind == "set":
        value = draw(_value_for(key, catalog))

        def change(parent: Any, step: Any) -> None:
            parent[step] = copy.deepcopy(value)

    elif kind == "drop":

        def change(parent: Any, step: Any) -> None:
            del parent[step]

    elif kind == "duplicate_item":
        index = draw(st.integers(0, len(node) - 1))
        at = draw(st.integers(0, len(node)))
        return _modify(body, path, lambda parent, step: parent[step].insert(at, copy.deepcopy(node[index])))
    elif kind == "insert_item":
        # An event from another of this ESP's batches (another type, an inbound one...).
        item = draw(st.sampled_from(catalog[BATCH_ITEM]))
        at = draw(st.integers(0, len(node)))
        return _modify(body, path, lambda parent, step: parent[step].insert(at, copy.deepcopy(item)))
    elif kind == "drop_item":
        index = draw(st.integers(0, len(node) - 1))
        return _modify(body, path, lambda parent, step: parent[step].pop(index))
    elif kind == "reorder":
        order = draw(st.permutations(range(len(node))))
        return _modify(body, path, lambda parent, step: parent.__setitem__(step, [parent[step][i] for i in order]))
    else:  # graft: a key/value seen elsewhere in this ESP's fixtures
        names = [name for name in catalog if not isinstance(name, tuple)]
        name = draw(st.sampled_from(names)) if names else "extra"
        value = draw(_value_for(name, catalog))
        return _modify(body, path, lambda parent, step: parent[step].__setitem__(name, copy.deepcopy(value)))

    if not path:
        # The whole body: replaced, or wrapped as a batch of itself.
        return draw(st.sampled_from([value if kind == "set" else {}, [body, body], [body], None]))
    return _modify(body, path, change)


@st.composite
def _mutated_form(draw: st.DrawFn, form: list[list[Any]], catalog: dict[Any, list[Any]]) -> list[list[Any]]:
    form = copy.deepcopy(form)
    fields = [index for index, item in enumerate(form) if len(item) == 2]
    kinds = ["add"]
    if fields:
        kinds += ["drop", "repeat", "set", "move", "inside"]
    kind = draw(st.sampled_from(kinds))
    if kind == "add":
        names = [name[1] for name in catalog if isinstance(name, tuple) and name[0] == "form"] or ["extra"]
        name = draw(st.one_of(st.sampled_from(names), st.just(UNKNOWN_NAME)))
        value = draw(_value_for(("form", name), catalog))
        form.insert(draw(st.integers(0, len(form))), [name, _as_form_text(value)])
        return form
    index = draw(st.sampled_from(fields))
    if kind == "drop":
        del form[index]
    elif kind == "repeat":
        form.insert(draw(st.integers(0, len(form))), list(form[index]))
    elif kind == "move":
        item = form.pop(index)
        form.insert(draw(st.integers(0, len(form))), item)
    elif kind == "set":
        form[index][1] = _as_form_text(draw(_value_for(("form", form[index][0]), catalog)))
    else:
        decoded = _json_text(form[index][1])
        if decoded is None:
            form[index][1] = _as_form_text(draw(_value_for(form[index][0], catalog)))
        else:
            form[index][1] = json.dumps(draw(_mutated_json(decoded, catalog)), ensure_ascii=False)
    return form


def _as_form_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@st.composite
def mutated_specs(draw: st.DrawFn, slug: str) -> dict[str, Any]:
    """A fixture spec of ``slug`` with one to MAX_MUTATIONS mutations."""
    specs = _seed_specs(slug)
    catalog = _catalog(specs)
    spec = copy.deepcopy(draw(st.sampled_from(specs)))
    for _ in range(draw(st.integers(1, MAX_MUTATIONS))):
        kind = draw(st.sampled_from(["body"] * 8 + ["headers", "content_type"]))
        if kind == "headers" and spec.get("headers"):
            spec["headers"] = draw(_mutated_headers(spec["headers"]))
        elif kind == "content_type":
            spec.update(draw(_other_encoding(spec)))
        elif "body" in spec:
            spec["body"] = draw(_mutated_json(spec["body"], catalog))
        else:
            spec["form"] = draw(_mutated_form(spec["form"], catalog))
    spec["description"] = "fuzzed"
    return spec


@st.composite
def _mutated_headers(draw: st.DrawFn, headers: dict[str, str]) -> dict[str, str]:
    """A request header dropped, recased or given another text value."""
    headers = dict(headers)
    name = draw(st.sampled_from(sorted(headers)))
    kind = draw(st.sampled_from(["drop", "recase", "set"]))
    value = headers.pop(name)
    if kind == "recase":
        headers[draw(st.sampled_from([name.lower(), name.upper(), name.title()]))] = value
    elif kind == "set":
        odd_texts = [text for text in ODD_VALUES if isinstance(text, str) and text.isascii() and len(text) < 100]
        headers[name] = draw(st.sampled_from(odd_texts))
    return headers


JSON_CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=UTF-8",
    "application/json; charset=latin-1",
    "text/plain; charset=UTF-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=espstream-fixture-boundary",
]


@st.composite
def _other_encoding(draw: st.DrawFn, spec: dict[str, Any]) -> dict[str, Any]:
    """Another content type for a JSON body; a form sent url-encoded instead of multipart or back."""
    if "body" in spec:
        return {"content_type": draw(st.sampled_from(JSON_CONTENT_TYPES))}
    has_files = any(len(item) == 3 for item in spec["form"])
    return {"multipart": has_files or not spec.get("multipart", False)}


# What the Avro contract can carry: text fields str (numbers become their text).
def _fits_text(value: Any) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool))


def unfit_fields(event: dict[str, Any]) -> set[str]:
    """The fields of anymail's event (as compare.anymail_fields gives it) the contract's types cannot carry."""
    unfit = {field for field in TEXT_FIELDS if not _fits_text(event[field])}
    if not isinstance(event["metadata"], dict):
        unfit.add("metadata")
    if not (isinstance(event["tags"], list) and all(map(_fits_text, event["tags"]))):
        unfit.add("tags")
    if not (event["timestamp"] is None or isinstance(event["timestamp"], datetime)):
        unfit.add("timestamp")
    return unfit


def contract_expected(event: dict[str, Any]) -> dict[str, Any]:
    """anymail's event with the contract's conversions that compare.py leaves to the callers.

    A naive timestamp is read as UTC; a numeric tag is its decimal text (tags are a list of str).
    """
    event = dict(event)
    timestamp = event["timestamp"]
    if isinstance(timestamp, datetime) and timestamp.tzinfo is None:
        event["timestamp"] = timestamp.replace(tzinfo=timezone.utc)
    if isinstance(event["tags"], list):
        event["tags"] = [tag if isinstance(tag, str) or not _fits_text(tag) else str(tag) for tag in event["tags"]]
    return event


def sns_validation_error(fixture: Any) -> Exception | None:
    """What anymail's Amazon SES view refuses before parsing: SNS headers that contradict the body.

    The oracle calls parse_events alone (signatures are the gateway's); this check
    is no signature, and the SES parser reproduces it for the headers a record has
    (docs/esps.md, Amazon SES).
    """
    headers, body = dict(fixture.headers), fixture.body
    if isinstance(fixture.parsed_body, dict):
        # The parser checks the headers a record has; that they are there is the gateway's
        # check. A missing header is given the body's value, so only the others are compared.
        sns_message = dict(fixture.parsed_body)
        present = {name.lower() for name in headers}
        if "x-amz-sns-message-id" not in present:
            headers["x-amz-sns-message-id"] = sns_message["MessageId"] = "absent"
        if "x-amz-sns-message-type" not in present and isinstance(sns_message.get("Type"), str):
            headers["x-amz-sns-message-type"] = sns_message["Type"]
        body = json.dumps(sns_message).encode()
    request = django_request(fixture.slug, body, fixture.content_type, headers)
    try:
        anymail_view(fixture.slug).validate_request(request)
    except Exception as error:  # noqa: BLE001 - what anymail raises is the result
        return error
    return None


@cache
def documented_refusals(slug: str) -> tuple[tuple[str, str, str], ...]:
    """(error, message piece, fixture) of the departure fixtures where anymail gives events and we refuse.

    These are deliberate: e.g. a string where a list of recipients belongs, whose
    characters anymail would report one event each. A refusal for the same reason
    is the documented behaviour, not a mismatch.
    """
    refusals = []
    for fixture in fixtures_for(slug):
        departure = fixture.departure
        if departure is not None and departure.error is not None and run_anymail(fixture).events is not None:
            refusals.append((departure.error, departure.message, fixture.id))
    return tuple(refusals)


def is_documented_refusal(slug: str, error: Exception) -> bool:
    return any(
        type(error).__name__ == name and piece in str(error) for name, piece, _ in documented_refusals(slug)
    )


def check_against_anymail(slug: str, spec: dict[str, Any]) -> None:
    fixture = from_spec(slug, "fuzzed", spec)
    result = run_anymail(fixture)
    try:
        ours, error = run_ours(fixture), None
    except normalizer.NormalizeError as raised:
        ours, error = None, raised
    request = json.dumps(spec, ensure_ascii=False, default=repr)[:1500]

    validation_error = sns_validation_error(fixture) if slug == "amazon_ses" else None
    if validation_error is not None:
        assert isinstance(error, normalizer.NormalizeError), (
            f"anymail's SNS validation refuses it ({validation_error!r}); ours: {ours!r}\n{request}"
        )
        return
    if result.refused:
        assert isinstance(error, normalizer.MisconfiguredWebhook), (
            f"anymail refuses {result.error!r}; ours: {error!r}\n{request}"
        )
        return
    if ours is not None:
        # Whatever we give must survive the trip through Kafka as Avro unchanged.
        decoded = avro_round_trip(copy.deepcopy(ours), fixture)
        changed = differences([our_fields(event) for event in decoded], [our_fields(event) for event in ours])
        assert not changed, "\n  ".join(["after Avro:", *changed, request])
    if result.error is not None:
        return  # anymail crashed: our events or a NormalizeError are both right
    expected = [contract_expected(event) for event in anymail_expected(result)]
    unfit = [unfit_fields(event) for event in expected]
    if error is not None:
        assert isinstance(error, normalizer.MalformedPayload) and (any(unfit) or is_documented_refusal(slug, error)), (
            f"anymail gives {len(expected)} event(s) we could carry, ours raise {error!r}\n{request}"
        )
        return
    problems = differences([our_fields(event) for event in ours], expected)
    if problems and len(ours) == len(expected):
        # Where anymail's value cannot be carried, a parser may read it its documented way
        # (Brevo's "tag" list) instead of refusing the request; every other field must agree.
        problems = [
            f"event {index} {field}: ours {our_fields(mine)[field]!r} != expected {theirs[field]!r}"
            for index, (mine, theirs, cannot) in enumerate(zip(ours, expected, unfit))
            for field in FIELDS
            if field not in cannot and not same_field(field, our_fields(mine)[field], theirs[field])
        ]
    assert not problems, "\n  ".join([f"{len(problems)} difference(s):", *problems, request])


@pytest.mark.parametrize("slug", IMPLEMENTED)
def test_mutated_fixtures_are_handled_as_anymail_handles_them(slug: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(spec=mutated_specs(slug))
    def check(spec: dict[str, Any]) -> None:
        check_against_anymail(slug, spec)

    check()
