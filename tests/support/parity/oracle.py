"""django-anymail as the reference: a fixture through anymail's own tracking webhook view.

Django is configured minimally in the test process. The view's ``parse_events``
is called directly, so basic auth and ESP signatures are not checked: in
espstream that is the gateway's job, and fixtures need not be signed.
"""

import copy
import importlib
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest
from django.test import RequestFactory

from espstream.schemas.esps import ANYMAIL_VIEWS

# What the views' __init__ insist on. Dummies: signatures are never checked here.
ANYMAIL_SETTINGS: dict[str, Any] = {
    "WEBHOOK_SECRET": "fixture:fixture",  # else every view warns it is insecure
    # Else an SNS SubscriptionConfirmation makes the view call AWS (boto3) to confirm it.
    "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": False,
    "MAILERSEND_SIGNING_SECRET": "fixture-signing-secret",
    "MAILGUN_WEBHOOK_SIGNING_KEY": "fixture-signing-key",
    "MAILTRAP_SIGNING_SECRET": "fixture-signing-secret",
    "MANDRILL_WEBHOOK_KEY": "fixture-webhook-key",
    "POSTAL_WEBHOOK_KEY": "fixture-webhook-key",
    "RESEND_SIGNING_SECRET": "whsec_Zml4dHVyZS1zaWduaW5nLXNlY3JldA==",
    "UNISENDER_GO_API_KEY": "fixture-api-key",
}


@dataclass(frozen=True)
class AnymailResult:
    """anymail's events for one request, or the exception its view raised."""

    esp_name: str
    events: list[Any] | None = None
    error: Exception | None = None

    @property
    def refused(self) -> bool:
        """anymail rejected the payload as a misconfigured webhook (not a crash)."""
        from anymail.exceptions import AnymailConfigurationError

        return isinstance(self.error, AnymailConfigurationError)


def configure_django() -> None:
    if settings.configured:
        return
    settings.configure(
        SECRET_KEY="espstream-parity-tests",
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        INSTALLED_APPS=["anymail"],
        ANYMAIL=ANYMAIL_SETTINGS,
        # Django's own limits would turn big fixtures into errors anymail never sees.
        DATA_UPLOAD_MAX_MEMORY_SIZE=None,
        DATA_UPLOAD_MAX_NUMBER_FIELDS=None,
    )
    django.setup()


@cache
def anymail_view(slug: str) -> Any:
    """An instance of anymail's tracking view for ``slug`` (they keep no per-request state)."""
    configure_django()
    from anymail.exceptions import AnymailDeprecationWarning, AnymailNotSupportedWarning

    module_name, class_name = ANYMAIL_VIEWS[slug].rsplit(".", 1)
    with warnings.catch_warnings():
        # The SendinBlue URL is deprecated and SendGrid unsupported, yet both still parse.
        warnings.simplefilter("ignore", AnymailDeprecationWarning)
        warnings.simplefilter("ignore", AnymailNotSupportedWarning)
        view_class = getattr(importlib.import_module(module_name), class_name)
        return view_class()


def django_request(slug: str, body: bytes, content_type: str | None, headers: dict[str, str]) -> HttpRequest:
    return RequestFactory().generic(
        "POST",
        f"/anymail/{slug}/tracking/",
        data=body,
        content_type=content_type or "",
        headers=headers,
    )


def anymail_events(slug: str, body: bytes, content_type: str | None, headers: dict[str, str]) -> AnymailResult:
    # A fresh instance per request, as Django's as_view() makes: Mandrill's combined
    # view records on itself which signal (tracking or inbound) its batch goes to.
    view = copy.copy(anymail_view(slug))
    request = django_request(slug, body, content_type, headers)
    try:
        events = list(view.parse_events(request))
    except Exception as error:  # noqa: BLE001 - what anymail raises is the result
        return AnymailResult(esp_name=view.esp_name, error=error)
    from anymail.signals import tracking

    # Only what the view sends to tracking receivers (Mandrill sends inbound batches elsewhere).
    return AnymailResult(esp_name=view.esp_name, events=events if view.signal is tracking else [])
