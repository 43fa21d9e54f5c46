"""Reading what a signature covers out of a webhook body, within bounds.

Some schemes sign values inside the body (Mailgun's token and timestamp, the
form fields Mandrill signs, Unisender Go's ``auth``), so the gateway parses the
body before it trusts it. The parsing is ``schemas.webhook_body``'s, shared
with the normalizer, so what is verified here is what is interpreted there; a
body it cannot read is refused like a wrong signature.
"""

from typing import Any

from espstream.schemas.webhook_body import MalformedBody, media_type
from espstream.schemas.webhook_body import form_fields as _form_fields
from espstream.schemas.webhook_body import load_json as _load_json

from .base import SignatureError, SignedRequest

__all__ = ["form_fields", "load_json", "media_type"]


def load_json(body: bytes) -> Any:
    """The body as anymail reads it (UTF-8 JSON, nesting bounded), or SignatureError."""
    try:
        return _load_json(body)
    except MalformedBody:
        raise SignatureError("the body is not the JSON the signature needs") from None


def form_fields(request: SignedRequest) -> dict[str, str]:
    """``request.POST.dict()``: each form field's last value; empty when the body is not a form."""
    try:
        return _form_fields(request.body, request.content_type)
    except MalformedBody as error:
        raise SignatureError(str(error)) from None
