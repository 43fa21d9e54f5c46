"""Multipart forms within bounds: every part counts against Django's limits, any charset gives fields or MalformedBody.

A part is parsed whether or not it is kept, so parts without a name, without
headers, or carrying a file count too (as Django counts them); otherwise a
2.5 MiB body of empty parts costs seconds of parsing before any signature is
checked. Where Django refuses a form as too large, so does the shared reader.
"""

import encodings
import pkgutil

import pytest
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from espstream.schemas.webhook_body import MAX_FORM_FIELDS, MAX_FORM_FILES, MalformedBody, multipart_pairs
from tests.support.parity.oracle import configure_django, django_request
from tests.unit.normalizer.fuzz.test_parsers_fuzz import fuzz_settings

CONTENT_TYPE = "multipart/form-data; boundary=XX"
END = b"--XX--\r\n"
NAMELESS = b"--XX\r\nContent-Disposition: form-data\r\n\r\n\r\n"
HEADER_ONLY = b"--XX\r\nA:\r\n\r\n\r\n"  # the adversarial test's part: no Content-Disposition at all
FILE = b'--XX\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\n\r\nx\r\n'
FIELD = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'


def django_refuses(body: bytes) -> bool:
    """Whether Django with its default limits (the oracle lifts the field limit) refuses the form."""
    configure_django()
    with override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=MAX_FORM_FIELDS, DATA_UPLOAD_MAX_NUMBER_FILES=MAX_FORM_FILES):
        try:
            django_request("mailgun", body, CONTENT_TYPE, {}).POST  # noqa: B018 - parsing is the point
        except (TooManyFieldsSent, TooManyFilesSent):
            return True
    return False


OVER_THE_LIMITS = {
    "nameless parts": NAMELESS * (MAX_FORM_FIELDS + 3) + FIELD,
    "parts without headers": HEADER_ONLY * (MAX_FORM_FIELDS + 3) + FIELD,
    "files": FILE * (MAX_FORM_FILES + 1) + FIELD,
    "nameless parts after fields": FIELD * 500 + NAMELESS * 510,
}


@pytest.mark.parametrize("body", OVER_THE_LIMITS.values(), ids=OVER_THE_LIMITS.keys())
def test_every_part_counts_as_in_django(body: bytes) -> None:
    with pytest.raises(MalformedBody, match="over"):
        multipart_pairs(body + END, CONTENT_TYPE)
    assert django_refuses(body + END)


def test_the_largest_body_of_empty_parts_is_refused_after_the_limit() -> None:
    body = HEADER_ONLY * (2_621_440 // len(HEADER_ONLY) - 1) + END  # ESPSTREAM_MAX_BODY_BYTES of them
    with pytest.raises(MalformedBody, match=f"over {MAX_FORM_FIELDS} fields"):
        multipart_pairs(body, CONTENT_TYPE)


def test_up_to_the_limits_is_read() -> None:
    body = FIELD * (MAX_FORM_FIELDS - 1) + NAMELESS + FILE * MAX_FORM_FILES + END
    assert multipart_pairs(body, CONTENT_TYPE) == [("a", "1")] * (MAX_FORM_FIELDS - 1)
    assert not django_refuses(body)


# Every codec Python has, text or not, and values that make some of them fail even with errors="replace".
CODECS = sorted({module.name for module in pkgutil.iter_modules(encodings.__path__)} - {"aliases"})
PIECES = st.sampled_from([b"a", b"\xff", b"\x00", b"\\ud800", b"\\N{", b"+2ADYAA-", b"xn--", b"-", b".", b"\xe9"])


@pytest.mark.parametrize("charset", ["idna", "undefined", "punycode"])
def test_a_charset_that_cannot_decode_is_malformed_not_a_crash(charset: str) -> None:
    body = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n\xff\r\n' + END
    with pytest.raises(MalformedBody, match=charset):
        multipart_pairs(body, f"multipart/form-data; charset={charset}; boundary=XX")


@pytest.mark.parametrize("charset", CODECS)
def test_any_charset_gives_fields_or_malformed_body(charset: str) -> None:
    @fuzz_settings(15)
    @given(name=st.lists(PIECES, max_size=6), value=st.lists(PIECES, min_size=1, max_size=6))
    def run(name: list[bytes], value: list[bytes]) -> None:
        body = b'--XX\r\nContent-Disposition: form-data; name="' + b"".join(name) + b'"\r\n\r\n' + b"".join(value)
        try:
            pairs = multipart_pairs(body + b"\r\n" + END, f"multipart/form-data; charset={charset}; boundary=XX")
        except MalformedBody:
            return
        assert all(isinstance(text, str) for pair in pairs for text in pair)

    run()
