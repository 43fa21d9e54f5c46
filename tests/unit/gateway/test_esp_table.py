"""The gateway's side of schemas.esps: a signed ESP's settings exist and its verifier is built from them."""

import pytest

from espstream.gateway.settings import SECRET_SETTINGS, GatewaySettings
from espstream.gateway.signatures import VERIFIERS, build_verifiers
from espstream.schemas.esps import ESPS

SIGNED = sorted(slug for slug, esp in ESPS.items() if esp.signing_settings)


@pytest.mark.parametrize("slug", SIGNED)
def test_a_signed_esps_settings_are_gateway_settings_read_from_files_too(slug: str) -> None:
    for name in ESPS[slug].signing_settings:
        assert name in GatewaySettings.model_fields
        assert name in SECRET_SETTINGS


def test_every_signed_esp_has_a_verifier() -> None:
    assert sorted(VERIFIERS) == SIGNED


def test_an_esp_is_checked_once_its_first_signing_setting_is_set() -> None:
    settings = GatewaySettings(mailgun_webhook_signing_key="key", mandrill_webhook_url="https://example.com/hook")
    assert sorted(build_verifiers(settings)) == ["mailgun"]
