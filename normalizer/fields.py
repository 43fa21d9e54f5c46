"""ESP values -> TrackingEvent's field types (text, tags, metadata).

anymail passes these through as the ESP sent them; the Avro contract needs text
to be ``str``, ``tags`` a list of ``str`` and ``metadata`` a dict. Values whose
meaning is plain are converted; anything else is a ``MalformedPayload``.
"""

from email.errors import HeaderParseError, InvalidHeaderDefect
from email.headerregistry import Address
from email.utils import getaddresses
from typing import Any

from .errors import MalformedPayload


def lookup(table: dict[str, Any], key: Any, default: Any) -> Any:
    """``table[key]`` for an ESP's name of a type or status; ``default`` for other names and for
    anything that is not text (a list or a number names nothing, and a list is not even hashable)."""
    return table.get(key, default) if isinstance(key, str) else default


def optional_text(value: Any, field: str) -> str | None:
    """Text or None; a JSON number becomes its decimal text."""
    if value is None:
        return value
    if isinstance(value, str):
        return utf8_text(value, field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise MalformedPayload(f"{field} is not text: {value!r}")


def tag_list(value: Any, field: str) -> list[str]:
    """Tags as a list of str: None -> [], a bare tag -> [tag], null tags dropped."""
    if value is None:
        return []
    if isinstance(value, list):
        return [tag for tag in (optional_text(item, field) for item in value) if tag is not None]
    tag = optional_text(value, field)
    return [] if tag is None else [tag]


def metadata_dict(value: Any, field: str) -> dict[str, Any]:
    """Metadata as a dict: None -> {}."""
    if value is None:
        return {}
    if isinstance(value, dict):
        for key in value:
            utf8_text(key, f"a key of {field}")
        return value
    raise MalformedPayload(f"{field} is not an object: {value!r}")


def utf8_text(text: str, field: str) -> str:
    """``text`` if UTF-8 can hold it (Avro strings are UTF-8).

    JSON can spell an unpaired UTF-16 surrogate (``"\\ud800"``), which no ESP sends and
    no UTF-8 text can hold: anymail passes it through, the event could not be encoded.
    """
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise MalformedPayload(f"{field} holds an unpaired UTF-16 surrogate: {text!r}") from None
    return text


def batch_items(value: Any, field: str) -> list[Any]:
    """The items of a JSON array of events, as anymail's ``for item in value`` reaches them.

    An empty object or empty text iterates as nothing (anymail gives no events);
    any other non-array would make anymail index a key or a character: malformed.
    """
    if isinstance(value, list):
        return value
    if value == {} or value == "":
        return []
    raise MalformedPayload(f"{field} is not a JSON array: {value!r}")


# An addr-spec longer than this is refused: no address is (RFC 5321 allows 256 characters), and
# the standard library parses one in time quadratic in its length ("." * 80000: a minute).
MAX_ADDR_SPEC = 998

# What anymail's recipient lookup catches: its AnymailInvalidAddress wraps the first four.
_ADDRESS_ERRORS = (HeaderParseError, IndexError, InvalidHeaderDefect, ValueError, KeyError, TypeError)


def single_address(value: Any) -> str | None:
    """The address in ``value`` as anymail's ``parse_single_address(value).addr_spec``; None where it raises.

    None for None, for text holding several addresses and for what anymail cannot parse.
    """
    if value is None:
        return None
    # Django's force_str: anything else is parsed as its str().
    text = value if isinstance(value, str) else str(value)
    try:
        pairs = getaddresses([text])
    except RecursionError:  # nested comments "((((…", where anymail crashes
        raise MalformedPayload(f"address nested too deeply to parse: {text[:100]!r}…") from None
    try:
        if not pairs and text == "":
            pairs = [("", "")]
        if len(pairs) != 1:
            return None  # none or several
        display_name, addr_spec = pairs[0]
        if len(addr_spec) > MAX_ADDR_SPEC:
            raise MalformedPayload(f"address over {MAX_ADDR_SPEC} characters: {addr_spec[:100]!r}…")
        utf8_text(addr_spec, "address")
        if addr_spec and not addr_spec.isascii():
            # Address(addr_spec=...) mishandles non-ASCII (python/cpython#81074); anymail splits it.
            if "@" not in addr_spec:
                return None
            username, domain = addr_spec.rsplit("@", 1)
            if username.startswith('"') and username.endswith('"'):
                username = username[1:-1].replace("\\\\", "\\").replace('\\"', '"')
            return Address(display_name, username, domain).addr_spec
        return Address(display_name, addr_spec=addr_spec).addr_spec
    except _ADDRESS_ERRORS:
        return None
    except RecursionError:
        raise MalformedPayload(f"address nested too deeply to parse: {text[:100]!r}…") from None
