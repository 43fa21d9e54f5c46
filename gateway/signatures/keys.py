"""Public keys as ESP dashboards show them: the base64 body of a PEM, or a whole PEM."""

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


def load_public_key(text: str) -> PublicKeyTypes:
    """The key, as anymail loads it (header and footer added when missing). ValueError if it is none."""
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        text = f"-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----"
    return serialization.load_pem_public_key(text.encode("utf-8"))
