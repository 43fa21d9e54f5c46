"""ESP values -> TrackingEvent's field types (text, tags, metadata).

anymail passes these through as the ESP sent them; the Avro contract needs text
to be ``str``, ``tags`` a list of ``str`` and ``metadata`` a dict. Values whose
meaning is plain are converted; anything else is a ``MalformedPayload``.
"""

from typing import Any

from .errors import MalformedPayload


def optional_text(value: Any, field: str) -> str | None:
    """Text or None; a JSON number becomes its decimal text."""
    if value is None or isinstance(value, str):
        return value
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
        return value
    raise MalformedPayload(f"{field} is not an object: {value!r}")


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
