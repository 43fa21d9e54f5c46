"""Reading what a signature covers out of a webhook body, within bounds.

Some schemes sign values inside the body (Mailgun's token and timestamp, the
form fields Mandrill signs, Unisender Go's ``auth``), so the gateway parses the
body before it trusts it. The body's size is already limited; here JSON
nesting is bounded (a RecursionError is a refusal, not a crash) and forms get
Django's limit of 1000 fields, parsed as Django parses ``request.POST``, which
anymail reads.
"""

import base64
import binascii
import codecs
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from .base import SignatureError, SignedRequest

# Django's DATA_UPLOAD_MAX_NUMBER_FIELDS: anymail's views refuse more (400) by default.
MAX_FORM_FIELDS = 1000
FORM_URLENCODED = "application/x-www-form-urlencoded"
FORM_MULTIPART = "multipart/form-data"
# Django's rule for a boundary (django.http.multipartparser).
_BOUNDARY = re.compile(rb"[ -~]{0,200}[!-~]")


def media_type(content_type: str | None) -> str:
    """The content type without parameters, lower-cased, as Django's ``request.content_type``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def load_json(body: bytes) -> Any:
    """The body as anymail reads it: UTF-8 text through the standard library's parser."""
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise SignatureError("the body is not the JSON the signature needs") from None


def form_fields(request: SignedRequest) -> dict[str, str]:
    """``request.POST.dict()``: each form field's last value; empty when the body is not a form."""
    kind = media_type(request.content_type)
    if kind == FORM_URLENCODED:
        pairs = _urlencoded_pairs(request.body, request.content_type or "")
    elif kind == FORM_MULTIPART:
        pairs = _multipart_pairs(request.body, request.content_type or "")
    else:
        return {}
    return dict(pairs)


def _urlencoded_pairs(body: bytes, content_type: str) -> list[tuple[str, str]]:
    _, params = parse_options_header(content_type)
    charset = params.get(b"charset", b"utf-8").decode("latin-1").lower()
    if charset != "utf-8":  # Django answers 400: such forms must be UTF-8
        raise SignatureError(f"a form body must be UTF-8, not {charset!r}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("iso-8859-1")  # Django's fallback for raw non-UTF-8 bytes
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise SignatureError(f"a form body with over {MAX_FORM_FIELDS} fields") from None


def _multipart_pairs(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """The non-file fields of a multipart/form-data body, decoded as Django decodes them."""
    try:
        _, params = parse_options_header(content_type)
    except UnicodeEncodeError:
        raise SignatureError("multipart/form-data with a non-ASCII content type") from None
    boundary = params.get(b"boundary", b"")
    if not _BOUNDARY.fullmatch(boundary):
        raise SignatureError("multipart/form-data without a valid boundary")
    charset = _known_charset(params.get(b"charset", b"").decode("latin-1")) or "utf-8"
    parts = _MultipartFields(boundary)
    parts.parse(body)
    pairs = []
    for name, base64_encoded, value in parts.fields:
        if base64_encoded:
            try:
                value = bytearray(base64.b64decode(value))
            except binascii.Error:
                pass  # Django keeps undecodable base64 as it came
        pairs.append((name.decode(charset, "replace"), bytes(value).decode(charset, "replace")))
    return pairs


class _MultipartFields:
    """python-multipart callbacks collecting (name, base64-encoded, value) of each non-file part."""

    def __init__(self, boundary: bytes):
        self.fields: list[tuple[bytes, bool, bytearray]] = []
        self._headers: dict[bytes, bytes] = {}
        self._name, self._value = bytearray(), bytearray()
        self._in_field = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._headers.clear,
                "on_header_field": lambda data, start, end: self._name.extend(data[start:end]),
                "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
            },
        )

    def parse(self, body: bytes) -> None:
        try:
            self._parser.write(body)
        except ValueError as error:
            raise SignatureError(f"malformed multipart/form-data body: {error}") from None
        if body and self._parser.state != MultipartState.END:
            raise SignatureError("multipart/form-data body ends before its closing boundary")

    def _header_end(self) -> None:
        self._headers[bytes(self._name).strip().lower()] = bytes(self._value).strip()
        self._name.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition"))
        name = disposition.get(b"name")
        # As Django: a part without a name is dropped, one with a filename is a file.
        self._in_field = name is not None and not disposition.get(b"filename")
        if self._in_field:
            if len(self.fields) >= MAX_FORM_FIELDS:
                raise SignatureError(f"a form body with over {MAX_FORM_FIELDS} fields")
            base64_encoded = self._headers.get(b"content-transfer-encoding", b"").lower() == b"base64"
            self.fields.append((name.strip(), base64_encoded, bytearray()))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_field:
            self.fields[-1][2].extend(data[start:end])


def _known_charset(name: str) -> str | None:
    try:
        return codecs.lookup(name).name if name else None
    except LookupError:
        return None
