"""``json_like_stdlib`` reads every body as the standard library does: the same value, or the same error.

The normalizer and the gateway read JSON bodies through orjson when it gives the
standard library's answer; parity with django-anymail (which uses ``json.loads``)
depends on that being exact, types included (an int stays an int, -0.0 stays -0.0).
"""

import json
import math
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from espstream.schemas.webhook_body import json_like_stdlib


def reading(body: bytes, parse: Any) -> tuple[str, Any]:
    try:
        return "value", parse(body)
    except (ValueError, RecursionError) as error:
        return "error", type(error).__name__


def _typed(value: Any) -> Any:
    """``value`` with every scalar's type beside it, NaN comparable, key order kept."""
    if isinstance(value, dict):
        return ("object", [(key, _typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("array", [_typed(item) for item in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


def fresh_stack(read: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``read`` run on a thread of its own: the standard library's reading from the bottom of a stack, as
    json_like_stdlib runs it, not from however deep this test's own stack is."""

    def run(body: bytes) -> Any:
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(read, body).result()

    return run


def assert_read_alike(body: bytes) -> None:
    (kind, ours), (stdlib_kind, stdlib) = reading(body, lambda b: json_like_stdlib(b, json.loads)), reading(body, fresh_stack(json.loads))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 20 * len(body))  # comparing deep values needs a deeper stack than reading them
    try:
        assert (kind, _typed(ours) if kind == "value" else ours) == (stdlib_kind, _typed(stdlib) if stdlib_kind == "value" else stdlib)
    finally:
        sys.setrecursionlimit(limit)


numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 0.0, -0.0, 1e308, 5e-324]),
)
texts = st.text() | st.sampled_from(["\ud800", "\udfff", "a\ud83d", "\U0001f600", "\x00", "\u2028"])
values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(value=values, ensure_ascii=st.booleans())
def test_any_json_text_reads_as_the_standard_librarys(value: Any, ensure_ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    assert_read_alike(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=64) | st.text(alphabet='{}[]",:0123456789-+.eE \\utrnfalse').map(str.encode))
@example(body=b'{"a": 1, "b": 2, "a": 3}')
@example(body=b"[123456789012345678901234567890]")
@example(body=b"-9223372036854775809")
@example(body=b"18446744073709551616")
@example(body=b"1e400")
@example(body=b"[NaN, Infinity, -Infinity]")
@example(body=b'"\\ud800"')
@example(body=b'"\xed\xa0\x80"')
@example(body=b"\xef\xbb\xbf{}")
@example(body='{"a": "ü"}'.encode("utf-16"))
def test_any_bytes_read_as_the_standard_librarys(body: bytes) -> None:
    assert_read_alike(body)


@pytest.mark.parametrize("depth", [100, 399, 400, 990, 1020, 1100, 5000])
def test_deep_nesting_reads_as_the_standard_librarys(depth: int) -> None:
    # orjson nests to 1024, the standard library until its recursion limit: the deep ones are its to answer.
    assert_read_alike(b"[" * depth + b"]" * depth)
    assert_read_alike(b'{"a":' * depth + b"1" + b"}" * depth)


def test_how_deep_a_body_may_nest_does_not_depend_on_the_caller() -> None:
    """The normalizer, a replay and the gateway read the same body alike however deep their own stack is."""

    def nested(depth: int, then: Callable[[], str]) -> str:  # a deeper caller
        return then() if depth == 0 else nested(depth - 1, then)

    for nesting in (500, 800, 900, 950, 990, 1200):
        body = b'{"a":' * nesting + b"{}" + b"}" * nesting

        def outcome() -> str:
            try:
                json_like_stdlib(body, json.loads)
                return "read"
            except RecursionError:
                return "too deep"

        assert outcome() == nested(200, outcome) == nested(600, outcome), nesting
