"""Who may use the console, and that a POST comes from the console's own pages.

Basic auth: one user and password (``ESPSTREAM_CONSOLE_USER`` / ``_PASSWORD``),
compared in constant time, required for every page when a password is set; the
console refuses to listen beyond loopback without one.

CSRF: each browser gets a random session id in a cookie (HttpOnly,
SameSite=Strict); every form carries HMAC(key, session id) in a hidden field,
the key made at start, so a token is worth nothing in another session or after
a restart. A POST needs both to agree, and an ``Origin``, when the browser sends
one, naming the console's own host.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "espstream_console_session"
CSRF_FIELD = "csrf_token"


class Guard:
    def __init__(self, user: str, password: str | None):
        self._credentials = (user.encode(), password.encode()) if password else None
        self._key = secrets.token_bytes(32)

    @property
    def requires_auth(self) -> bool:
        return self._credentials is not None

    def authorized(self, request: Request) -> bool:
        """True without a password; else the request's basic auth is the user and password (constant time)."""
        if self._credentials is None:
            return True
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, colon, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both compared whatever the first gives: the time does not say which was wrong.
        user_ok = secrets.compare_digest(user, self._credentials[0])
        password_ok = secrets.compare_digest(password, self._credentials[1])
        return bool(colon) and user_ok and password_ok

    def session(self, request: Request) -> tuple[str, bool]:
        """The browser's session id, and whether it is new (then ``remember`` it on the response)."""
        current = request.cookies.get(SESSION_COOKIE, "")
        if len(current) >= 32 and current.isascii():
            return current, False
        return secrets.token_urlsafe(32), True

    def token(self, session: str) -> str:
        return hmac.new(self._key, session.encode(), hashlib.sha256).hexdigest()

    def remember(self, response: Response, session: str, secure: bool) -> None:
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", secure=secure, path="/")

    def post_allowed(self, request: Request, token: str) -> bool:
        """A POST from one of the console's forms: the token matches the session cookie, the origin is this host."""
        session = request.cookies.get(SESSION_COOKIE)
        if not session or not token:
            return False
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            return False
        return hmac.compare_digest(self.token(session), token)
