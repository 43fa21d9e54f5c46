"""A raw webhook as the ESP parsers see it: body bytes, content type, request headers."""

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .errors import MalformedPayload


@dataclass(slots=True)
class WebhookRequest:
    body: bytes
    content_type: str | None = None
    # Lower-cased header names.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        """The content type without parameters, lower-cased: 'application/json'."""
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON (the standard library's parser, as anymail uses)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as error:
            raise MalformedPayload(f"body is not valid JSON: {error}") from None

    def form(self) -> dict[str, list[str]]:
        """The body parsed as an HTML form, every field a list of its values, in order."""
        if self.media_type == "multipart/form-data":
            return _multipart_fields(self.body, self.content_type or "")
        text = self.body.decode("utf-8", "replace")
        fields: dict[str, list[str]] = {}
        for name, value in parse_qsl(text, keep_blank_values=True):
            fields.setdefault(name, []).append(value)
        return fields


def _multipart_fields(body: bytes, content_type: str) -> dict[str, list[str]]:
    """The non-file fields of a multipart/form-data body."""
    raise MalformedPayload("multipart/form-data is not parsed yet")
