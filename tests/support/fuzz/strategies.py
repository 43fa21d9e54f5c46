"""Hypothesis strategies for raw webhooks: random bytes, random JSON, mutated fixtures.

Unlike the differential fuzz against anymail (tests/unit/normalizer/parity/test_differential_fuzz.py),
which keeps requests near real ones so that anymail's answer means something,
these go far from them: any JSON type anywhere, numbers and text at the edges of
what parsers can hold, several mutations stacked, the layers of JSON text inside
a body (Amazon SNS's Message, Mandrill's mandrill_events, Mailgun's
message-headers) mutated too, and any content type and charset.
"""

import base64
import copy
import json
import math
import string
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from tests.support.parity.fixtures import FIXTURES_DIR, MULTIPART_BOUNDARY


@dataclass(frozen=True)
class Request:
    """One raw webhook as the normalizer gets it."""

    body: bytes
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # hypothesis prints the falsifying example: keep it readable
        body = self.body if len(self.body) <= 2000 else self.body[:2000] + b"...(%d bytes)" % len(self.body)
        return f"Request(body={body!r}, content_type={self.content_type!r}, headers={self.headers!r})"


UNKNOWN_TYPE = "espstream_unheard_of_event"
LONE_SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff", "a\ud83d", "\ude00b"]

# Values at the edges of what the parsers and the Avro types can hold.
EXTREMES: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**100, -(10**300),
    0.0, -0.0, 0.5, 1e-320, 1e308, -1e308, 1.7976931348623157e308,
    float("nan"), float("inf"), float("-inf"),
    "", " ", "\x00", "\t\r\n", "null", "[]", "{}", "0", "-1", "1e400", "NaN", "Infinity", "0x10",
    "x" * 10_000, "\\" * 3000, "." * 3000, "(" * 3000, '"' * 3000, "<" * 3000, "@" * 3000,
    "Zoë ☃ 日本語 <zoë@exämple.de>", "\u202e\u0000\uffff\U0010ffff", "=?utf-8?q?=E2=98=83?= <a@b.c>",
    "a@b@example.com", "Name <a@example.com>, b@example.com", "<>", "@", "\"quoted\\\"\"@example.com",
    *LONE_SURROGATES,
    [], {}, [None], [[[]]], {"": None}, ["a", 1, None, [], {}],
]

# Timestamps as ESPs send them, and as nobody should.
MANGLED_TIMESTAMPS: list[Any] = [
    "0000-00-00T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "10000-01-01T00:00:00Z",
    "2016-13-45T25:61:61Z", "2016-04-21T18:03:24.123456789012345Z", "2016-04-21T18:03:24+99:99",
    "2016-04-21 18:03:24 +0000", "2016-4-1 1:2", "2016-04-21T18:03:24.Z", "2016-04-21T18:03:24,5+01",
    "2016-04-21", "18:03:24", "Thu, 21 Apr 2016 18:03:24 GMT", "1461261330", " 1461261330 ", "1461261330.123456789",
    "-1", "1e20", "-1e20", "1e400", "nan", "-inf", "0x5717", "1_461_261_330",
    1461261330, 1461261330.5, -62135596801, 253402300800, 1e20, -1e20, 2**63, 10**400, float("nan"), float("inf"),
    True, [], {}, None, "9" * 5000,
]

CONTENT_TYPES: list[str | None] = [
    None, "", "application/json", "application/json; charset=utf-8", "application/json; charset=UTF-16",
    "application/json; charset=latin-1", "application/json; charset=cp500", "application/json; charset=nonsense",
    "application/json; charset=", "application/json; charset=\"utf-8\"", "APPLICATION/JSON", "text/plain",
    "text/plain; charset=UTF-8", "text/plain; charset=utf-32", "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8", "application/x-www-form-urlencoded; charset=latin-1",
    f"multipart/form-data; boundary={MULTIPART_BOUNDARY}", "multipart/form-data", "multipart/form-data; boundary=",
    "multipart/form-data; boundary=\"x y\"", "multipart/form-data; boundary=" + "b" * 300, "application/octet-stream",
    ";", "application/json;;;charset", "ünïcode/type", "application/json; charset=utf-8; charset=latin-1",
]

TIME_WORDS = ("time", "timestamp", "ts", "date", "at", "created", "delivered", "received")
TYPE_WORDS = ("event", "type", "status", "recordtype", "notificationtype", "eventtype", "reason")


def json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
        st.sampled_from(EXTREMES[:40] + LONE_SURROGATES),
        st.builds(lambda char, size: char * size, st.sampled_from(["a", "\\", ".", "é", "\ud800", "[", " "]),
                  st.integers(0, 5000)),
    )


def json_values(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """Any JSON document, nested."""
    return st.recursive(
        json_scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=6),
            st.dictionaries(st.one_of(st.text(max_size=10), st.sampled_from(["event", "type", "", "\ud800"])),
                            children, max_size=6),
        ),
        max_leaves=max_leaves,
    )


def encode_json(value: Any, ascii_only: bool) -> bytes:
    """JSON text (NaN and Infinity tokens included); lone surrogates become \\u escapes."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True).encode("ascii")


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    """Nesting from shallow to far beyond the parser's stack, closed or not."""
    depth = draw(st.sampled_from([10, 500, 990, 1000, 5000, 100_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"event":[', "]}"), ('["', '"]')]))
    closed = draw(st.booleans())
    return (opener * depth + "1" + (closer * depth if closed else "")).encode()


def random_json_bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(encode_json, json_values(), st.booleans()),
        deep_json(),
        st.builds(lambda digits: b"[" + b"9" * digits + b"]", st.sampled_from([20, 400, 4300, 4301, 100_000])),
        st.sampled_from([b"NaN", b"[Infinity, -Infinity, NaN]", b'{"a": NaN}', b'"\\ud800"', b'{"\\udfff": 1}',
                         b"\xef\xbb\xbf{}", b"{}\x00", b'{"a":1,"a":2}', b"1e99999", b"-0", b"[1,]"]),
    )


# Fixtures -------------------------------------------------------------------------------------


@cache
def seed_specs(slug: str) -> tuple[dict[str, Any], ...]:
    """Every fixture spec of ``slug`` (without its expectation)."""
    specs = []
    for path in sorted((FIXTURES_DIR / slug).glob("*.json")):
        spec = json.loads(path.read_text(encoding="utf-8"))
        spec.pop("expect", None)
        spec.pop("description", None)
        specs.append(spec)
    return tuple(specs)


def render(spec: dict[str, Any], ascii_only: bool = False) -> Request:
    """The request a fixture spec describes (the format of tests/fixtures/README.md), any text allowed."""
    headers = dict(spec.get("headers", {}))
    if "body" in spec:
        return Request(encode_json(spec["body"], ascii_only), spec.get("content_type", "application/json"), headers)
    if "form" in spec:
        items = [(item[0], item[1], item[2] if len(item) > 2 else None) for item in spec["form"]]
        if spec.get("multipart") or any(file is not None for _, _, file in items):
            content_type = f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"
            return Request(_multipart(items), spec.get("content_type", content_type), headers)
        body = urlencode([(name, value) for name, value, _ in items], encoding="utf-8", errors="surrogatepass")
        return Request(body.encode("ascii"), spec.get("content_type", "application/x-www-form-urlencoded"), headers)
    if "body_text" in spec:
        return Request(spec["body_text"].encode("utf-8", "surrogatepass"), spec.get("content_type"), headers)
    return Request(base64.b64decode(spec["body_base64"]), spec.get("content_type"), headers)


def _multipart(items: list[tuple[str, str, dict[str, str] | None]]) -> bytes:
    lines = []
    for name, value, file in items:
        disposition = f'form-data; name="{name}"'
        if file is not None:
            disposition += f'; filename="{file["filename"]}"'
        lines += [f"--{MULTIPART_BOUNDARY}", f"Content-Disposition: {disposition}", "", value]
    lines += [f"--{MULTIPART_BOUNDARY}--", ""]
    return "\r\n".join(lines).encode("utf-8", "surrogatepass")


# Structure-aware mutation ----------------------------------------------------------------------

# A path step that enters JSON text (a string holding a JSON object or array).
JSON_TEXT = "<json text>"


def json_text(value: Any) -> Any:
    """The object or array a string holds as JSON text, else None."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return None
        if isinstance(decoded, (dict, list)):
            return decoded
    return None


def walk(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (path, node) of a JSON value, JSON text inside it included."""
    nodes = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            nodes += walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            nodes += walk(item, (*path, index))
    else:
        inner = json_text(value)
        if inner is not None:
            nodes += walk(inner, (*path, JSON_TEXT))
    return nodes


def replace(root: Any, path: tuple[Any, ...], new: Any, ascii_only: bool = False) -> Any:
    """A copy of ``root`` with the node at ``path`` replaced by ``new`` (``DROP`` removes it)."""
    if not path:
        return new
    step, rest = path[0], path[1:]
    if step == JSON_TEXT:
        inner = replace(json_text(root), rest, new, ascii_only)
        return "" if inner is DROP else json.dumps(inner, ensure_ascii=ascii_only)
    root = copy.copy(root)
    child = replace(root[step], rest, new, ascii_only)
    if child is DROP:
        del root[step]
    else:
        root[step] = child
    return root


DROP = object()


def _last_key(path: tuple[Any, ...]) -> str:
    return next((step for step in reversed(path) if isinstance(step, str) and step != JSON_TEXT), "")


def _catalog(slug: str) -> dict[str, list[Any]]:
    return _catalog_cached(slug)


@cache
def _catalog_cached(slug: str) -> dict[str, list[Any]]:
    """Scalar values seen under each key in the ESP's fixtures: other event types, other formats."""
    seen: dict[str, list[Any]] = {}
    for spec in seed_specs(slug):
        roots = [spec["body"]] if "body" in spec else [item[1] for item in spec.get("form", [])]
        for root in roots:
            for path, node in walk(root):
                key = _last_key(path).lower()
                if key and not isinstance(node, (dict, list)):
                    values = seen.setdefault(key, [])
                    if node not in values and len(values) < 30:
                        values.append(node)
    return seen


@st.composite
def mutated_json(draw: st.DrawFn, body: Any, slug: str) -> Any:
    """One mutation somewhere in ``body`` (JSON text inside it included)."""
    path, node = draw(st.sampled_from(walk(body)))
    key = _last_key(path).lower()
    kinds = ["type", "extreme", "random", "drop", "wrap"]
    if isinstance(node, list):
        kinds += ["unwrap", "duplicate", "empty"]
    if isinstance(node, dict):
        kinds += ["graft", "empty"]
    if any(word in key for word in TIME_WORDS):
        kinds += ["timestamp"] * 4
    if any(word in key for word in TYPE_WORDS):
        kinds += ["event_type"] * 4
    kind = draw(st.sampled_from(kinds))
    ascii_only = draw(st.booleans())
    if kind == "drop":
        new = DROP if path else None
    elif kind == "type":
        new = _other_type(node, draw)
    elif kind == "extreme":
        new = draw(st.sampled_from(EXTREMES))
    elif kind == "random":
        new = draw(json_values(max_leaves=8))
    elif kind == "wrap":
        new = draw(st.sampled_from([[node], [node, node], {"": node}, json.dumps(node)]))
    elif kind == "unwrap":
        new = node[0] if node else None
    elif kind == "duplicate":
        new = node * draw(st.integers(2, 50))
    elif kind == "empty":
        new = type(node)()
    elif kind == "graft":
        new = dict(node)
        new[draw(st.sampled_from([*list(_catalog(slug))[:50], "", UNKNOWN_TYPE]))] = draw(json_scalars())
    elif kind == "timestamp":
        new = draw(st.sampled_from(MANGLED_TIMESTAMPS))
    else:  # another of this ESP's names under the same key, or one it never sends
        known = _catalog(slug).get(key, [])
        new = draw(st.sampled_from([UNKNOWN_TYPE, "", None, 0, UNKNOWN_TYPE.upper(), *known]))
    return replace(body, path, new, ascii_only)


def _other_type(node: Any, draw: st.DrawFn) -> Any:
    """The node's meaning in another JSON type: 1 -> "1", "1" -> 1, x -> [x], {...} -> "{...}"..."""
    if isinstance(node, str):
        options: list[Any] = [[node], {node: node}, len(node), node == "", None]
        try:
            options.append(float(node))
        except ValueError:
            pass
    elif isinstance(node, bool):
        options = [str(node).lower(), int(node), [node]]
    elif isinstance(node, (int, float)):
        options = [str(node), repr(node), [node], node != 0, -node]
        if math.isfinite(node):
            options.append(float(node) if isinstance(node, int) else int(node))
    elif isinstance(node, list):
        options = [json.dumps(node), {str(i): v for i, v in enumerate(node)}, len(node), None]
    elif isinstance(node, dict):
        options = [json.dumps(node), list(node.values()), list(node.items()), list(node), None]
    else:
        options = ["", "null", 0, False, [], {}]
    return draw(st.sampled_from(options))


@st.composite
def mutated_form(draw: st.DrawFn, form: list[list[Any]], slug: str) -> list[list[Any]]:
    """A form field added, dropped, repeated or changed; JSON text in a field mutated inside."""
    form = copy.deepcopy(form)
    fields = [index for index, item in enumerate(form) if len(item) == 2]
    kind = draw(st.sampled_from(["add", "drop", "repeat", "set", "inner", "inner"] if fields else ["add"]))
    if kind == "add":
        name = draw(st.sampled_from([*list(_catalog(slug))[:50], UNKNOWN_TYPE, ""]))
        form.insert(draw(st.integers(0, len(form))), [name, _form_text(draw(json_scalars()))])
        return form
    index = draw(st.sampled_from(fields))
    if kind == "drop":
        del form[index]
    elif kind == "repeat":
        form.insert(draw(st.integers(0, len(form))), list(form[index]))
    elif kind == "set":
        key = form[index][0].lower()
        pool = [*EXTREMES, *(_catalog(slug).get(key, [])), *(MANGLED_TIMESTAMPS if "time" in key else [])]
        form[index][1] = _form_text(draw(st.sampled_from(pool)))
    else:
        inner = json_text(form[index][1])
        if inner is None:
            form[index][1] = _form_text(draw(st.sampled_from(MANGLED_TIMESTAMPS + EXTREMES)))
        else:
            form[index][1] = json.dumps(draw(mutated_json(inner, slug)), ensure_ascii=draw(st.booleans()))
    return form


def _form_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@st.composite
def mutated_bytes(draw: st.DrawFn, body: bytes) -> bytes:
    """A byte-level change: truncated, a byte flipped, bytes inserted or deleted."""
    if not body:
        return draw(st.binary(max_size=20))
    at = draw(st.integers(0, len(body)))
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
    if kind == "truncate":
        return body[:at]
    if kind == "flip":
        at = min(at, len(body) - 1)
        return body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1:]
    if kind == "insert":
        return body[:at] + draw(st.sampled_from([b"\x00", b"\xff", b"\xc3", b'"', b"\\", b"{", b"]", b"%", b"&=",
                                                 b"\r\n--" + MULTIPART_BOUNDARY.encode()])) + body[at:]
    return body[:at] + body[at + draw(st.integers(1, 16)):]


@st.composite
def mutated_headers(draw: st.DrawFn, headers: dict[str, str]) -> dict[str, str]:
    headers = dict(headers)
    kind = draw(st.sampled_from(["add", "drop", "set"] if headers else ["add"]))
    if kind == "add":
        name = draw(st.sampled_from(["x-amz-sns-message-type", "x-amz-sns-message-id", "user-agent", "svix-id",
                                     "x-mailgun-sid", "X-Unknown", "content-type"]))
        headers[name] = draw(header_values())
    else:
        name = draw(st.sampled_from(sorted(headers)))
        if kind == "drop":
            del headers[name]
        else:
            headers[name] = draw(header_values())
    return headers


def header_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["", "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation", UNKNOWN_TYPE,
                         "\ufffd\ufffd", "x" * 5000, "a\x00b", "\ud800"]),
        st.text(max_size=30),
    )


@st.composite
def mutated_requests(draw: st.DrawFn, slug: str, max_mutations: int = 6) -> Request:
    """A fixture of ``slug`` with one to ``max_mutations`` mutations stacked."""
    spec = copy.deepcopy(draw(st.sampled_from(seed_specs(slug))))
    byte_level = False
    content_type: Any = ...
    for _ in range(draw(st.integers(1, max_mutations))):
        kind = draw(st.sampled_from(["body"] * 10 + ["headers", "content_type", "bytes"]))
        if kind == "headers":
            spec["headers"] = draw(mutated_headers(spec.get("headers", {})))
        elif kind == "content_type":
            content_type = draw(content_types())
        elif kind == "bytes":
            byte_level = True
        elif "body" in spec:
            spec["body"] = draw(mutated_json(spec["body"], slug))
        elif "form" in spec:
            spec["form"] = draw(mutated_form(spec["form"], slug))
        else:
            byte_level = True
    request = render(spec, ascii_only=draw(st.booleans()))
    body = draw(mutated_bytes(request.body)) if byte_level else request.body
    return Request(body, request.content_type if content_type is ... else content_type, request.headers)


def content_types() -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.sampled_from(CONTENT_TYPES),
        st.builds(
            lambda kind, charset: f"{kind}; charset={charset}",
            st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
            st.one_of(st.sampled_from(["utf-8", "utf-16-le", "utf-7", "ascii", "idna", "rot13", "hex", "base64",
                                       "punycode", "unicode_escape", "raw_unicode_escape", "zlib", "bz2",
                                       "uu", "quopri", "mbcs", "utf_8_sig", "big5", "shift_jis"]),
                      st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=12)),
        ),
        st.text(max_size=40),
    )


def random_requests() -> st.SearchStrategy[Request]:
    """Random bodies: bytes, or JSON documents of any shape, with any content type."""
    return st.builds(
        Request,
        st.one_of(st.binary(max_size=3000), random_json_bodies()),
        content_types(),
        st.dictionaries(st.sampled_from(["x-amz-sns-message-type", "x-amz-sns-message-id", "user-agent"]),
                        header_values(), max_size=2),
    )
