"""Reading what a signature covers out of a webhook body, within bounds.

Some schemes sign values inside the body (Mailgun's token and timestamp, the
form fields Mandrill signs, Unisender Go's ``auth``), so the gateway parses the
body before it trusts it. The parsing is ``schemas.webhook_body``'s, shared
with the normalizer, so what is verified here is what is interpreted there; a
body it cannot read is refused like a wrong signature.

A large body is parsed in a worker thread: the parse happens before the
signature is known good, so anyone can send one, and on the event loop it
would hold up every other request meanwhile.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from espstream.schemas.webhook_body import MalformedBody, media_type
from espstream.schemas.webhook_body import form_fields as _form_fields
from espstream.schemas.webhook_body import load_json as _load_json

from .base import SignatureError, SignedRequest

__all__ = ["form_fields", "load_json", "media_type", "parse_body"]

T = TypeVar("T")

# Bodies up to this size are parsed on the event loop: a few milliseconds at worst (500 empty
# multipart parts), usually far less than a thread hand-off costs.
INLINE_PARSE_BYTES = 4 * 1024
# Few threads: large parses queue behind each other, and the loop keeps its share of the GIL.
_PARSERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="espstream-body-parse")


async def parse_body(body: bytes, parse: Callable[[bytes], T]) -> T:
    """``parse(body)``, in a worker thread when the body is large."""
    if len(body) <= INLINE_PARSE_BYTES:
        return parse(body)
    return await asyncio.get_running_loop().run_in_executor(_PARSERS, parse, body)


async def load_json(body: bytes) -> Any:
    """The body as anymail reads it (UTF-8 JSON, nesting bounded), or SignatureError."""
    try:
        return await parse_body(body, _load_json)
    except MalformedBody:
        raise SignatureError("the body is not the JSON the signature needs") from None


async def form_fields(request: SignedRequest) -> dict[str, str]:
    """``request.POST.dict()``: each form field's last value; empty when the body is not a form."""
    try:
        return await parse_body(request.body, lambda body: _form_fields(body, request.content_type))
    except MalformedBody as error:
        raise SignatureError(str(error)) from None
