"""ESP signature checks: one module per scheme, chosen by the settings.

The verifier of a signed ESP is ``VERIFIER`` in ``gateway/signatures/<slug>.py``,
built from the settings ``schemas.esps`` lists for it. ``build_verifiers``
returns the verifier of each ESP whose key is configured; an ESP without one
relies on basic auth alone.
"""

import importlib
from collections.abc import Awaitable, Callable
from functools import partial

from espstream.schemas.esps import ESPS

from ..settings import GatewaySettings
from .amazon_ses import SnsVerifier, default_fetch
from .base import SignatureError, SignatureUnavailable, SignedRequest, Verifier

__all__ = ["SignatureError", "SignatureUnavailable", "SignedRequest", "Verifier", "build_verifiers"]

Fetch = Callable[[str], Awaitable[bytes]]


class InvalidKey(ValueError):
    """A configured key cannot be used (not base64, not a public key, not ASCII…)."""


# Verifier keyword -> the setting giving it, for the ESPs with options beyond their signing settings.
OPTIONS: dict[str, dict[str, str]] = {"sendgrid": {"max_age_seconds": "sendgrid_max_age_seconds"}}

# ESP slug -> its verifier class, taking the values of the ESP's signing settings in order.
VERIFIERS: dict[str, Callable[..., Verifier]] = {
    slug: importlib.import_module(f"{__name__}.{slug}").VERIFIER for slug, esp in ESPS.items() if esp.signing_settings
}


def build_verifiers(settings: GatewaySettings, fetch: Fetch | None = None) -> dict[str, Verifier]:
    """ESP slug -> its verifier, for every ESP with a signing key (or SNS topics) configured."""
    verifiers: dict[str, Verifier] = {}
    for slug, verifier in VERIFIERS.items():
        names = ESPS[slug].signing_settings
        if not getattr(settings, names[0]):
            continue
        if verifier is SnsVerifier:
            verifier = partial(SnsVerifier, fetch=fetch or default_fetch)
        try:
            options = {keyword: getattr(settings, name) for keyword, name in OPTIONS.get(slug, {}).items()}
            verifiers[slug] = verifier(*(getattr(settings, name) for name in names), **options)
        except UnicodeError:  # its message would quote the key's characters
            raise InvalidKey(f"ESPSTREAM_{names[0].upper()} cannot be used: it is not ASCII text") from None
        except (ValueError, TypeError) as error:
            raise InvalidKey(f"ESPSTREAM_{names[0].upper()} cannot be used: {error}") from error
    return verifiers
