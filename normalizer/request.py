"""A raw webhook as the ESP parsers see it: body bytes, content type, request headers."""

import base64
import binascii
import codecs
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from .errors import MalformedPayload

# Django's rule for a boundary (django.http.multipartparser).
_BOUNDARY = re.compile(rb"[ -~]{0,200}[!-~]")


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
        except RecursionError:
            raise MalformedPayload("body is JSON nested too deeply to parse") from None

    def form(self) -> dict[str, list[str]]:
        """The body parsed as an HTML form, every field a list of its values, in order.

        The same fields and values as Django's ``request.POST`` (which anymail reads).
        """
        if self.media_type == "multipart/form-data":
            return _multipart_fields(self.body, self.content_type or "")
        return _urlencoded_fields(self.body)


def _urlencoded_fields(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # Django's fallback for clients that send raw non-UTF-8 bytes.
        text = body.decode("iso-8859-1")
    fields: dict[str, list[str]] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"):
        fields.setdefault(name, []).append(value)
    return fields


def _multipart_fields(body: bytes, content_type: str) -> dict[str, list[str]]:
    """The non-file fields of a multipart/form-data body, decoded as Django decodes them."""
    try:
        _, params = parse_options_header(content_type)
    except UnicodeEncodeError:
        raise MalformedPayload(f"multipart/form-data with a non-ASCII content type: {content_type!r}") from None
    boundary = params.get(b"boundary", b"")
    if not _BOUNDARY.fullmatch(boundary):
        raise MalformedPayload(f"multipart/form-data with an invalid boundary: {boundary!r}")
    charset = _known_charset(params.get(b"charset", b"").decode("latin-1")) or "utf-8"
    if not body:
        return {}

    # (name, base64-encoded, value bytes) of each field part, in order; file parts are skipped.
    field_parts: list[tuple[bytes, bool, bytearray]] = []
    headers: dict[bytes, bytes] = {}
    header_name, header_value = bytearray(), bytearray()
    in_field = False

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_name).strip().lower()] = bytes(header_value).strip()
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal in_field
        _, disposition = parse_options_header(headers.get(b"content-disposition"))
        name = disposition.get(b"name")
        # As Django: a part without a name is dropped, one with a filename is a file.
        in_field = name is not None and not disposition.get(b"filename")
        if in_field:
            base64_encoded = headers.get(b"content-transfer-encoding", b"").lower() == b"base64"
            field_parts.append((name.strip(), base64_encoded, bytearray()))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if in_field:
            field_parts[-1][2].extend(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
    except ValueError as error:
        raise MalformedPayload(f"malformed multipart/form-data body: {error}") from None
    if parser.state != MultipartState.END:
        raise MalformedPayload("multipart/form-data body ends before its closing boundary")

    fields: dict[str, list[str]] = {}
    for name, base64_encoded, value in field_parts:
        if base64_encoded:
            try:
                value = bytearray(base64.b64decode(value))
            except binascii.Error:
                pass  # Django keeps undecodable base64 as it came
        fields.setdefault(name.decode(charset, "replace"), []).append(value.decode(charset, "replace"))
    return fields


def _known_charset(name: str) -> str | None:
    try:
        return codecs.lookup(name).name if name else None
    except LookupError:
        return None
