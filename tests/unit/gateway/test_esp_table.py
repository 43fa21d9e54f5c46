"""The gateway's side of schemas.esps: a signed ESP's settings exist and its verifier is built from them."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from espstream.gateway.settings import SECRET_SETTINGS, GatewaySettings
from espstream.gateway.signatures import VERIFIERS, build_verifiers
from espstream.schemas.esps import ESPS
from tests.unit.gateway.test_signatures import public_key_body

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


def test_a_verifiers_options_come_from_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    key = public_key_body(ec.generate_private_key(ec.SECP256R1()))
    monkeypatch.setenv("ESPSTREAM_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", key)
    for value, described in (("", "key)"), ("600", "key, timestamp within 600s)")):
        monkeypatch.setenv("ESPSTREAM_SENDGRID_MAX_AGE_SECONDS", value)  # empty: unset, any age as in anymail
        assert build_verifiers(GatewaySettings())["sendgrid"].description.endswith(described)
    monkeypatch.setenv("ESPSTREAM_SENDGRID_MAX_AGE_SECONDS", "0")
    with pytest.raises(ValueError, match="sendgrid_max_age_seconds"):
        GatewaySettings()
