"""HTTP basic auth with anymail's semantics: the decoded 'user:pass' must equal an allowed one."""

import base64
import binascii
import secrets


def request_basic_auth(authorization: str | None) -> str | None:
    """The 'user:pass' a request's Authorization header carries, or None."""
    if not authorization:
        return None
    try:
        scheme, data = authorization.split()
        if scheme.lower() != "basic":
            return None
        return base64.b64decode(data).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


class BasicAuth:
    def __init__(self, allowed: list[str]):
        self._allowed = [secret.encode() for secret in allowed]

    def __bool__(self) -> bool:
        return bool(self._allowed)

    def accepts(self, authorization: str | None) -> bool:
        given = request_basic_auth(authorization)
        if given is None:
            return False
        given_bytes = given.encode()
        # Constant time per candidate; the number of candidates is not a secret.
        return any(secrets.compare_digest(given_bytes, allowed) for allowed in self._allowed)
