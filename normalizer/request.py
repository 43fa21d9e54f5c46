"""A raw webhook as the ESP parsers see it: body bytes, content type, request headers, the caller's options."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from espstream.schemas.webhook_body import (
    FORM_MULTIPART,
    MalformedBody,
    json_like_stdlib,
    media_type,
    multipart_pairs,
    urlencoded_pairs,
)

from .errors import MalformedPayload


@dataclass(frozen=True, slots=True)
class NormalizeOptions:
    """anymail's parsing settings, given to normalize() by its caller: a parser reads no environment, so a
    record gives the same events wherever it is normalized with the same options."""

    # anymail's SPARKPOST_TRACK_INITIAL_OPEN_AS_OPENED: SparkPost's initial_open and amp_initial_open are opened too.
    sparkpost_track_initial_open_as_opened: bool = False


DEFAULT_OPTIONS = NormalizeOptions()


@dataclass(slots=True)
class WebhookRequest:
    body: bytes
    content_type: str | None = None
    # Lower-cased header names.
    headers: Mapping[str, str] = field(default_factory=dict)
    options: NormalizeOptions = DEFAULT_OPTIONS

    @property
    def media_type(self) -> str:
        """The content type without parameters, lower-cased: 'application/json'."""
        return media_type(self.content_type)

    def json(self) -> Any:
        """The body parsed as JSON, as the standard library's parser (which anymail uses) reads it."""
        try:
            return json_like_stdlib(self.body, json.loads)
        except (ValueError, UnicodeDecodeError) as error:
            raise MalformedPayload(f"body is not valid JSON: {error}") from None
        except RecursionError:
            raise MalformedPayload("body is JSON nested too deeply to parse") from None

    def form(self) -> dict[str, list[str]]:
        """The body parsed as an HTML form, every field a list of its values, in order.

        The same fields and values as Django's ``request.POST`` (which anymail reads), parsed
        by the same code that the gateway's signature checks use (``schemas.webhook_body``).
        """
        try:
            if self.media_type == FORM_MULTIPART:
                pairs = multipart_pairs(self.body, self.content_type)
            else:
                pairs = urlencoded_pairs(self.body, self.content_type)
        except MalformedBody as error:
            raise MalformedPayload(str(error)) from None
        fields: dict[str, list[str]] = {}
        for name, value in pairs:
            fields.setdefault(name, []).append(value)
        return fields
