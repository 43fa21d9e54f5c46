"""Gateway settings (environment variables, prefix ``ESPSTREAM_``).

Every credential can also come from a file named by ``<VARIABLE>_FILE``
(Docker and Kubernetes secrets): the file's content, trailing newline stripped.
The ESP settings mirror anymail's names (``MAILGUN_WEBHOOK_SIGNING_KEY`` is
``ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY``).
"""

import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from espstream.plumbing.config import CommonSettings
from espstream.schemas.esps import ESP_SLUGS, ESPS

ENV_PREFIX = "ESPSTREAM_"

# Other names a signing setting is also read under.
# anymail 15 reads MAILTRAP_TRACKING_SECRET; MAILTRAP_SIGNING_SECRET is accepted too.
_ALIASES: dict[str, tuple[str, ...]] = {"mailtrap_tracking_secret": ("mailtrap_signing_secret",)}
# Settings that may come from a file, and their aliases: the basic-auth secrets and every ESP's signing settings.
SECRET_SETTINGS: dict[str, tuple[str, ...]] = {
    "webhook_secret": (),
    **{name: _ALIASES.get(name, ()) for esp in ESPS.values() for name in esp.signing_settings},
}
# The ESPs' own keys (text settings).
ESP_KEYS = [name for name in SECRET_SETTINGS if name.endswith(("_key", "_secret", "_url")) and name != "webhook_secret"]


class SecretFilesSource(PydanticBaseSettingsSource):
    """``ESPSTREAM_X_FILE``, and the alias names, of the settings in SECRET_SETTINGS."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every setting at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, aliases in SECRET_SETTINGS.items():
            given = _given(name, aliases)
            if len(given) > 1:
                raise ValueError(f"set only one of {', '.join(given)}")
            plain = ENV_PREFIX + name.upper()
            if given and plain not in given:  # the plain variable is the environment source's
                values[name] = _read(next(iter(given.items())))
        return values


def _given(name: str, aliases: tuple[str, ...]) -> dict[str, str]:
    """Every variable that sets ``name``, with its value: itself, its _FILE, each alias and its _FILE."""
    variables = [ENV_PREFIX + candidate.upper() for candidate in (name, *aliases)]
    return {
        variable: os.environ[variable]
        for base in variables
        for variable in (base, base + "_FILE")
        if os.environ.get(variable)
    }


def _read(variable_and_value: tuple[str, str]) -> str:
    variable, value = variable_and_value
    if variable.endswith("_FILE"):
        content = Path(value).read_text(encoding="utf-8").rstrip("\r\n")
        # A secret mounted empty is a deployment error, never "no credential": refuse to start.
        if not content.strip():
            raise ValueError(f"{variable}: the file {value} is empty")
        return content
    return value


def _split_list(value: object) -> object:
    """A list setting given as text: a JSON list, or comma-separated."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class GatewaySettings(CommonSettings):
    # A refused setting's error must not print its value: it may be a secret.
    model_config = SettingsConfigDict(**CommonSettings.model_config, hide_input_in_errors=True)

    # Basic-auth credentials the ESPs send: "user:pass", several comma-separated or a JSON list.
    webhook_secret: Annotated[list[str], NoDecode] = []
    # Accept webhooks with no credentials at all (development only).
    allow_unauthenticated: bool = False
    # The ESPs whose webhooks are accepted (URL slugs); the others answer 404. Empty: all of them.
    enabled_esps: Annotated[list[str], NoDecode] = list(ESP_SLUGS)

    # ESP signature keys, as anymail names them; schemas.esps lists each ESP's.
    mailgun_webhook_signing_key: str | None = None
    mandrill_webhook_key: str | None = None
    # The webhook URL exactly as configured at Mandrill (it is signed); else rebuilt from the request.
    mandrill_webhook_url: str | None = None
    # Postal's public key: the base64 body of the PEM, as Postal shows it (a whole PEM works too).
    postal_webhook_key: str | None = None
    # SendGrid's signed event webhook public key, as SendGrid shows it (a whole PEM works too).
    sendgrid_tracking_webhook_verification_key: str | None = None
    resend_signing_secret: str | None = None
    mailersend_signing_secret: str | None = None
    mailtrap_tracking_secret: str | None = None
    unisender_go_api_key: str | None = None
    # Refuse SendGrid webhooks signed longer ago (or further ahead) than this; unset: any age, as anymail.
    sendgrid_max_age_seconds: float | None = Field(None, gt=0)
    # SNS topics whose messages are accepted for amazon_ses: comma-separated or a JSON list.
    amazon_ses_topic_arns: Annotated[list[str], NoDecode] = []
    # Confirm an allowed topic's SNS subscription by fetching its SubscribeURL.
    amazon_ses_auto_confirm_sns_subscriptions: bool = True

    # How long a client may take to send its request's headers, then its body (408).
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    # Requests with more or larger headers are refused (431).
    max_header_count: int = 100
    max_header_bytes: int = 32 * 1024
    # Proxies whose X-Forwarded-Proto/-For are trusted (uvicorn's forwarded_allow_ips).
    forwarded_allow_ips: str = "127.0.0.1,::1"

    # How long a request waits for the broker's acknowledgement before answering 503.
    ack_timeout_seconds: float = 5.0
    # What the 503 answer's Retry-After tells the ESP.
    retry_after_seconds: int = 5
    gateway_host: str = "0.0.0.0"
    gateway_port: int = 8000
    # Processes serving that one port (`espstream gateway --workers N` overrides it); each has its own
    # Kafka producer. Over 1, the metrics are summed over them (prometheus-client's multiprocess mode).
    gateway_workers: int = Field(1, ge=1)
    # Prometheus metrics on a port of their own (0: not served). Never on the webhook port: a
    # proxy in front may make any client look local, and the counts say what each ESP sends.
    gateway_metrics_port: int = Field(0, ge=0, le=65535)
    # Where that port listens (0.0.0.0 for a scraper on another host or container).
    metrics_host: str = "127.0.0.1"
    # An INFO line for every webhook request (ESP, status, reason, size, duration, request id);
    # off, only refused ones get one. About a tenth of a request's CPU time, in JSON.
    gateway_access_log: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The files before the environment: a variable set empty (a compose file's ${X:-}) must not hide
        # its _FILE. Both set and non-empty is refused by SecretFilesSource.
        return init_settings, SecretFilesSource(settings_cls), env_settings, dotenv_settings, file_secret_settings

    @field_validator("webhook_secret", "enabled_esps", "amazon_ses_topic_arns", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("webhook_secret")
    @classmethod
    def _user_and_password(cls, secrets: list[str]) -> list[str]:
        for secret in secrets:
            _, colon, password = secret.partition(":")
            if not colon:
                raise ValueError("each webhook secret must be 'user:password'")
            if not password:  # anyone could send it
                raise ValueError("a webhook secret has an empty password")
        return secrets

    @field_validator("enabled_esps")
    @classmethod
    def _known_esps(cls, esps: list[str]) -> list[str]:
        if not esps:  # set but empty (a compose file's ${X:-}): not configured
            return list(ESP_SLUGS)
        unknown = sorted(set(esps) - set(ESP_SLUGS))
        if unknown:
            raise ValueError(f"unknown ESPs {unknown}; known: {' '.join(ESP_SLUGS)}")
        return esps

    @field_validator("amazon_ses_topic_arns")
    @classmethod
    def _topic_arns(cls, arns: list[str]) -> list[str]:
        for arn in arns:
            if not arn.startswith("arn:") or arn.count(":") != 5:
                raise ValueError(f"not an SNS topic ARN: {arn!r}")
        return arns

    @field_validator(*ESP_KEYS, "sendgrid_max_age_seconds", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty variable (a compose file's ${X:-}) means "not configured", never an empty key.
        if isinstance(value, str) and not value.strip():
            return None
        return value
