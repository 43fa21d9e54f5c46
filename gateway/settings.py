"""Gateway settings (environment variables, prefix ``ESPSTREAM_``)."""

import json
from typing import Annotated

from pydantic import field_validator
from pydantic_settings import NoDecode

from espstream.config import CommonSettings


class GatewaySettings(CommonSettings):
    # Basic-auth credentials the ESPs send: "user:pass", several comma-separated or a JSON list.
    webhook_secret: Annotated[list[str], NoDecode] = []
    # Accept webhooks with no credentials at all (development only).
    allow_unauthenticated: bool = False
    # How long a request waits for the broker's acknowledgement before answering 503.
    ack_timeout_seconds: float = 5.0
    # What the 503 answer's Retry-After tells the ESP.
    retry_after_seconds: int = 5
    gateway_host: str = "0.0.0.0"
    gateway_port: int = 8000

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _user_and_password(cls, secrets: list[str]) -> list[str]:
        for secret in secrets:
            if ":" not in secret:
                raise ValueError("each webhook secret must be 'user:password'")
        return secrets
