"""ESP signature checks: one module per scheme, chosen by the settings.

``build_verifiers`` returns the verifier of each ESP whose key is configured;
an ESP without one relies on basic auth alone.
"""

from collections.abc import Awaitable, Callable

from ..settings import GatewaySettings
from .amazon_ses import SnsVerifier, default_fetch
from .base import SignatureError, SignatureUnavailable, SignedRequest, Verifier
from .mailersend import MailerSendVerifier
from .mailgun import MailgunVerifier
from .mailtrap import MailtrapVerifier
from .mandrill import MandrillVerifier
from .postal import PostalVerifier
from .resend import ResendVerifier
from .sendgrid import SendGridVerifier
from .unisender_go import UnisenderGoVerifier

__all__ = ["SignatureError", "SignatureUnavailable", "SignedRequest", "Verifier", "build_verifiers"]

Fetch = Callable[[str], Awaitable[bytes]]


class InvalidKey(ValueError):
    """A configured key cannot be used (not base64, not a public key, not ASCII…)."""


# ESP slug -> (the setting holding its key, the verifier built from the settings).
_KEYED: dict[str, tuple[str, Callable[[GatewaySettings], Verifier]]] = {
    "mailgun": ("mailgun_webhook_signing_key", lambda s: MailgunVerifier(s.mailgun_webhook_signing_key)),
    "mandrill": ("mandrill_webhook_key", lambda s: MandrillVerifier(s.mandrill_webhook_key, s.mandrill_webhook_url)),
    "postal": ("postal_webhook_key", lambda s: PostalVerifier(s.postal_webhook_key)),
    "sendgrid": (
        "sendgrid_tracking_webhook_verification_key",
        lambda s: SendGridVerifier(s.sendgrid_tracking_webhook_verification_key),
    ),
    "resend": ("resend_signing_secret", lambda s: ResendVerifier(s.resend_signing_secret)),
    "mailersend": ("mailersend_signing_secret", lambda s: MailerSendVerifier(s.mailersend_signing_secret)),
    "mailtrap": ("mailtrap_tracking_secret", lambda s: MailtrapVerifier(s.mailtrap_tracking_secret)),
    "unisender_go": ("unisender_go_api_key", lambda s: UnisenderGoVerifier(s.unisender_go_api_key)),
}


def build_verifiers(settings: GatewaySettings, fetch: Fetch | None = None) -> dict[str, Verifier]:
    """ESP slug -> its verifier, for every ESP with a signing key (or SNS topics) configured."""
    verifiers: dict[str, Verifier] = {}
    for slug, (setting, build) in _KEYED.items():
        if getattr(settings, setting):
            try:
                verifiers[slug] = build(settings)
            except UnicodeError:  # its message would quote the key's characters
                raise InvalidKey(f"ESPSTREAM_{setting.upper()} cannot be used: it is not ASCII text") from None
            except (ValueError, TypeError) as error:
                raise InvalidKey(f"ESPSTREAM_{setting.upper()} cannot be used: {error}") from error
    if settings.amazon_ses_topic_arns:
        try:
            verifiers["amazon_ses"] = SnsVerifier(
                settings.amazon_ses_topic_arns,
                settings.amazon_ses_auto_confirm_sns_subscriptions,
                fetch or default_fetch,
            )
        except ValueError as error:
            raise InvalidKey(f"ESPSTREAM_AMAZON_SES_TOPIC_ARNS cannot be used: {error}") from error
    return verifiers
