"""``WebhookRequest.form()`` gives the fields Django's ``request.POST`` gives anymail."""

import pytest

from espstream.normalizer import MalformedPayload
from espstream.normalizer.request import WebhookRequest
from tests.support.parity.oracle import configure_django, django_request

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=b0und"


def _django_post(body: bytes, content_type: str) -> dict[str, list[str]]:
    configure_django()
    request = django_request("mailgun", body, content_type, {})
    return {field: list(values) for field, values in request.POST.lists()}


def _ours(body: bytes, content_type: str) -> dict[str, list[str]]:
    return WebhookRequest(body=body, content_type=content_type).form()


def _part(disposition: str, value: bytes, *headers: str) -> bytes:
    lines = [b"--b0und", f"Content-Disposition: {disposition}".encode(), *(h.encode() for h in headers), b"", value]
    return b"\r\n".join(lines) + b"\r\n"


END = b"--b0und--\r\n"

URLENCODED_BODIES = {
    "repeated fields keep order": b"tag=a&event=opened&tag=b&tag=c",
    "blank values kept": b"a=&b&c=1",
    "plus and percent escapes": b"a+b=c+d&e=%C3%A9t%C3%A9&f=100%25",
    "invalid UTF-8 escape replaced": b"a=%E9t%E9",
    "raw UTF-8 bytes": "prénom=Zoë&город=Москва".encode(),
    "raw latin-1 bytes, read as latin-1": "prénom=Zoë".encode("latin-1"),
    "semicolon is not a separator": b"a=1;b=2",
    "stray separators": b"&&a=1&&",
    "empty name": b"=x&a=1",
    "bad escape kept": b"a=%zz",
    "empty body": b"",
}


@pytest.mark.parametrize("body", URLENCODED_BODIES.values(), ids=URLENCODED_BODIES.keys())
def test_urlencoded_fields_equal_djangos(body: bytes) -> None:
    assert _ours(body, URLENCODED) == _django_post(body, URLENCODED)


MULTIPART_BODIES = {
    "fields in order, repeated, blank": _part('form-data; name="tag"', b"a")
    + _part('form-data; name="event"', b"opened")
    + _part('form-data; name="tag"', b"b")
    + _part('form-data; name="blank"', b"")
    + END,
    "file parts left out": _part('form-data; name="event"', b"dropped")
    + _part('form-data; name="attachment-1"; filename="m.eml"', b"Subject: x\r\n\r\nbody", "Content-Type: message/rfc822")
    + END,
    "empty filename is a field for Django": _part('form-data; name="upload"; filename=""', b"text") + END,
    "part without a name dropped": _part("form-data", b"orphan") + _part('form-data; name="a"', b"1") + END,
    "base64 field decoded": _part('form-data; name="a"', b"w6l0w6k=", "Content-Transfer-Encoding: base64") + END,
    "invalid base64 kept": _part('form-data; name="a"', b"not base64!", "Content-Transfer-Encoding: base64") + END,
    "UTF-8 names and values": _part('form-data; name="prénom"', "Zoë 📬".encode()) + END,
    "invalid UTF-8 replaced": _part('form-data; name="a"', b"\xe9t\xe9") + END,
    "CRLF and dashes in a value": _part('form-data; name="a"', b"line 1\r\n--b0un\r\nline 3") + END,
    "escaped quote in a name": _part('form-data; name="say \\"hi\\""', b"1") + END,
    "header names in any case": b'--b0und\r\ncontent-disposition: form-data; name="a"\r\n\r\n1\r\n' + END,
    "empty body": b"",
}


@pytest.mark.parametrize("body", MULTIPART_BODIES.values(), ids=MULTIPART_BODIES.keys())
def test_multipart_fields_equal_djangos(body: bytes) -> None:
    assert _ours(body, MULTIPART) == _django_post(body, MULTIPART)


@pytest.mark.parametrize("charset", ["charset=iso-8859-1", "charset*=''iso-8859-1", "charset*=utf-8''latin-1"])
def test_multipart_charset_parameter_decodes_values_as_in_django(charset: str) -> None:
    content_type = f"multipart/form-data; {charset}; boundary=b0und"
    body = _part('form-data; name="a"', "Zoë".encode("latin-1")) + END
    assert _ours(body, content_type) == _django_post(body, content_type) == {"a": ["Zoë"]}


MALFORMED_MULTIPART = {
    "no boundary parameter": ("multipart/form-data", _part('form-data; name="a"', b"1") + END),
    "non-ASCII content type": ("multipart/form-data; boundary=b0und; charset=łódź", _part('form-data; name="a"', b"1") + END),
    "boundary with a space at the end": ('multipart/form-data; boundary="b0und "', b"--b0und \r\n"),
    "no closing boundary": (MULTIPART, _part('form-data; name="a"', b"1")),
    "not multipart at all": (MULTIPART, b"event=delivered&timestamp=1461261330"),
}


@pytest.mark.parametrize(("content_type", "body"), MALFORMED_MULTIPART.values(), ids=MALFORMED_MULTIPART.keys())
def test_malformed_multipart_is_a_malformed_payload(content_type: str, body: bytes) -> None:
    with pytest.raises(MalformedPayload, match="multipart"):
        _ours(body, content_type)
