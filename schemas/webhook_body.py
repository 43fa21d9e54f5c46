"""Reading a webhook body as django-anymail reads it: media type, JSON, form fields.

The gateway checks signatures over values inside the body (Mailgun's token,
Mandrill's form fields, Unisender Go's ``auth``) and the normalizer turns the
same body into events. Both read it here, so that what was verified is exactly
what is interpreted: a body two parsers read differently could carry a valid
signature for one reading and other events for the other.

Bounded: JSON nesting ends in ``MalformedBody`` (not a crash), and forms get
Django's limits of 1000 fields and 100 files, as anymail's views refuse more by
default. Every multipart part counts, nameless ones too: parsing a part costs
the same whether or not it is kept, so the limits bound the work.
"""

import base64
import binascii
import codecs
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Any
from urllib.parse import parse_qsl

import orjson
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

# Django's DATA_UPLOAD_MAX_NUMBER_FIELDS and DATA_UPLOAD_MAX_NUMBER_FILES.
MAX_FORM_FIELDS = 1000
MAX_FORM_FILES = 100
FORM_URLENCODED = "application/x-www-form-urlencoded"
FORM_MULTIPART = "multipart/form-data"
# Django's rule for a boundary (django.http.multipartparser).
_BOUNDARY = re.compile(rb"[ -~]{0,200}[!-~]")

FormPairs = list[tuple[str, str]]


class MalformedBody(ValueError):
    """The body is not what its content type says, or is over a parsing bound."""


def media_type(content_type: str | None) -> str:
    """The content type without parameters, lower-cased, as Django's ``request.content_type``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def charset(content_type: str | None) -> str | None:
    """Django's ``request.encoding``: the content type's charset parameter, when Python knows the codec.

    The gateway checks what a body says in this charset and the normalizer decodes it in it, so both
    read the parameter as Django does (``parse_header_parameters``, the email package's parser): quoted
    or not, any case, the last of several, and RFC 2231's ``charset*=utf-8''latin-1`` or
    ``charset*=''latin-1``. An RFC 2231 value naming an unknown charset, where Django raises, is
    MalformedBody; a plain unknown one is ignored, as Django ignores it.
    """
    if not content_type or ";" not in content_type:
        return None
    header = Message()
    try:
        header["content-type"] = content_type
        params = header.get_params()[1:]
    except (ValueError, TypeError):
        return None
    name = None
    for param, value in params:
        if param == "charset":
            if isinstance(value, tuple):
                if value[0] and not _known_charset(value[0]):
                    raise MalformedBody(f"the content type's charset* names an unknown charset {value[0]!r}")
                value = collapse_rfc2231_value(value)
            name = value
    return _known_charset(name) if name else None


def load_json(body: bytes) -> Any:
    """The body as anymail reads it: UTF-8 text through the standard library's parser."""
    try:
        return json_like_stdlib(body, lambda text: json.loads(text.decode("utf-8")))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise MalformedBody(f"the body is not UTF-8 JSON: {error}") from None
    except RecursionError:
        raise MalformedBody("the body is JSON nested too deeply to parse") from None


# orjson reads an integer beyond 64 bits as a float where the standard library keeps it exact:
# with every digit made a 0, a run of 20 digits, or of 19 after a minus sign, may be one.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TWENTY_DIGITS = b"0" * 20
_MINUS_NINETEEN_DIGITS = b"-" + b"0" * 19
# Fewer brackets than this cannot nest deep enough for the standard library's RecursionError.
_SHALLOW_BRACKETS = 400
_STDLIB_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="json-stdlib")


def json_like_stdlib(body: bytes, stdlib: Callable[[bytes], Any]) -> Any:
    """``stdlib(body)`` (the standard library's JSON reading), taken from orjson when that is the same value.

    orjson is several times faster, and where it reads a body at all it reads it as the
    standard library does (same values and types, the last of duplicate keys), except for
    integers beyond 64 bits and nesting deep enough to make the standard library recurse
    too far: those bodies, and every body orjson refuses (NaN and Infinity, lone surrogates,
    UTF-16 or a BOM, invalid JSON), go to ``stdlib``, whose answer or error is the result.
    tests/unit/schemas/test_json_reading.py holds both readings equal.
    """
    digits = body.translate(_DIGITS_TO_ZERO)
    if (
        body.count(b"[") + body.count(b"{") < _SHALLOW_BRACKETS
        and _TWENTY_DIGITS not in digits
        and _MINUS_NINETEEN_DIGITS not in digits
    ):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    # On a thread of its own the standard library's recursion starts at the same depth whoever
    # calls: how deep a body may nest before RecursionError depends on the body alone, so the
    # normalizer, a replay and the gateway agree on it.
    return _STDLIB_READERS.submit(stdlib, body).result()


def form_pairs(body: bytes, content_type: str | None) -> FormPairs:
    """Every (name, value) of a form body in order, as Django's ``request.POST`` holds them; [] for other types."""
    kind = media_type(content_type)
    if kind == FORM_URLENCODED:
        return urlencoded_pairs(body, content_type)
    if kind == FORM_MULTIPART:
        return multipart_pairs(body, content_type)
    return []


def form_fields(body: bytes, content_type: str | None) -> dict[str, str]:
    """``request.POST.dict()``: each form field's last value (what anymail reads and Mandrill signs)."""
    return dict(form_pairs(body, content_type))


def urlencoded_pairs(body: bytes, content_type: str | None) -> FormPairs:
    """An application/x-www-form-urlencoded body, parsed as Django's QueryDict parses it."""
    declared = charset(content_type)
    if declared is not None and declared.lower() != "utf-8":  # Django answers 400: such forms must be UTF-8
        raise MalformedBody(f"a form body must be UTF-8, not {declared!r}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("iso-8859-1")  # Django's fallback for raw non-UTF-8 bytes
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise MalformedBody(f"a form body with over {MAX_FORM_FIELDS} fields") from None


def multipart_pairs(body: bytes, content_type: str | None) -> FormPairs:
    """The non-file fields of a multipart/form-data body, decoded as Django decodes them."""
    try:
        _, params = parse_options_header(content_type or "")
    except UnicodeEncodeError:
        raise MalformedBody("multipart/form-data with a non-ASCII content type") from None
    boundary = params.get(b"boundary", b"")
    if not _BOUNDARY.fullmatch(boundary):
        raise MalformedBody("multipart/form-data without a valid boundary")
    encoding = charset(content_type) or "utf-8"
    if not _text_encoding(encoding):  # rot13, base64, zlib...: Django's decoding of the fields crashes
        raise MalformedBody(f"multipart/form-data in {encoding!r}, which is not a text encoding")
    if not body:
        return []
    parts = _MultipartFields(boundary)
    parts.parse(body)
    pairs = []
    for name, base64_encoded, value in parts.fields:
        if base64_encoded:
            try:
                value = bytearray(base64.b64decode(value))
            except binascii.Error:
                pass  # Django keeps undecodable base64 as it came
        pairs.append((_decoded(name, encoding), _decoded(bytes(value), encoding)))
    return pairs


def _decoded(data: bytes, encoding: str) -> str:
    """``data`` in the form's charset, undecodable bytes replaced, as Django decodes a field."""
    try:
        return data.decode(encoding, "replace")
    except UnicodeError:  # idna, punycode, undefined: codecs that fail even with "replace" (Django: a 500)
        raise MalformedBody(f"multipart/form-data that {encoding!r} cannot decode") from None


class _MultipartFields:
    """python-multipart callbacks collecting (name, base64-encoded, value) of each non-file part.

    Every part is counted, as Django counts it: a file against MAX_FORM_FILES, any other part (nameless
    or without headers included) against MAX_FORM_FIELDS.
    """

    def __init__(self, boundary: bytes):
        self.fields: list[tuple[bytes, bool, bytearray]] = []
        self._other_parts = 0
        self._files = 0
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
        except ValueError as error:  # MalformedBody (too many fields) included
            raise MalformedBody(f"malformed multipart/form-data body: {error}") from None
        if self._parser.state != MultipartState.END:
            raise MalformedBody("multipart/form-data body ends before its closing boundary")

    def _header_end(self) -> None:
        self._headers[bytes(self._name).strip().lower()] = bytes(self._value).strip()
        self._name.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition"))
        name = disposition.get(b"name")
        # As Django: a part with a filename is a file, one without a name is dropped.
        is_file = bool(disposition.get(b"filename"))
        if is_file:
            self._files += 1
        else:
            self._other_parts += 1
        if self._files > MAX_FORM_FILES or self._other_parts > MAX_FORM_FIELDS:
            raise MalformedBody(f"a form body with over {MAX_FORM_FIELDS} fields or {MAX_FORM_FILES} files")
        self._in_field = name is not None and not is_file
        if self._in_field:
            base64_encoded = self._headers.get(b"content-transfer-encoding", b"").lower() == b"base64"
            self.fields.append((name.strip(), base64_encoded, bytearray()))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_field:
            self.fields[-1][2].extend(data[start:end])


def _text_encoding(name: str) -> bool:
    """Whether ``bytes.decode`` accepts the codec (a bytes-to-bytes codec raises LookupError there)."""
    try:
        b"x".decode(name)  # an empty input is returned before the codec is checked
    except LookupError:
        return False
    except ValueError:  # a text codec that cannot decode this one byte (UTF-16...)
        pass
    return True


def _known_charset(name: str) -> str | None:
    try:
        return codecs.lookup(name).name if name else None
    except (LookupError, ValueError):  # ValueError: a name with a NUL character
        return None
