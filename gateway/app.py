"""The webhook gateway: authenticate, write the exact body to the raw topic, answer after the ack.

A request goes through, in this order: the ESP is enabled (else 404), basic
auth when configured (401), the body read within its size and time limits
(413, 408), the ESP's signature when its key is configured (400; 503 when it
cannot be checked now, e.g. the SNS certificate is unreachable), the write
(503 unless the broker acknowledged, then 200), and last, after the answer,
the verifier's ``after_stored`` step if it has one (SNS subscription
confirmation). A refused request writes nothing.

Every answer carries an ``X-Request-Id``, made here for every request (one a
client sends is not taken: anyone could reuse another webhook's). It is in the raw
record's ``request-id`` header (and so in every event's provenance), in every
log line about the request, and the answer is counted in the metrics
(gateway.metrics) by ESP, status and reason.
"""

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

from espstream import __version__
from espstream.plumbing.logs import REQUEST_ID
from espstream.plumbing.metrics import serve
from espstream.schemas import raw
from espstream.schemas.esps import ESP_SLUGS

from .auth import BasicAuth
from .metrics import STATUS_OF_REASON, RequestMetrics
from .producer import AckingProducer, BrokerUnavailable
from .settings import GatewaySettings
from .signatures import InvalidKey, SignatureError, SignatureUnavailable, SignedRequest, Verifier, build_verifiers

log = logging.getLogger("espstream.gateway")
access_log = logging.getLogger("espstream.gateway.access")


READY_TIMEOUT_SECONDS = 2.0
CLOSE = {"Connection": "close"}


class ConfigurationError(Exception):
    """The gateway must not start with these settings."""


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


class ClientGone(Exception):
    """The client closed the connection before its body was in."""


class Outcome(NamedTuple):
    """How a webhook request ended: the reason (gateway.metrics.STATUS_OF_REASON), the answer, the body's size."""

    reason: str
    response: Response
    body_bytes: int | None = None


class WebhookRoute(APIRoute):
    """A webhook route, documented like any other, served without FastAPI's per-request parameter solving.

    The endpoint takes only the path's ``esp`` (text) and the raw Request, and
    returns a Response itself, so that machinery had nothing to validate or
    convert; skipping it cuts the gateway's CPU time per request by about a
    fifth (BENCHMARKS.md).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            return await endpoint(request.path_params["esp"], request)

        return handle


class Protection(NamedTuple):
    auth: BasicAuth
    verifiers: Mapping[str, Verifier]
    enabled: frozenset[str]


def check_protection(
    settings: GatewaySettings, fetch: Callable[[str], Awaitable[bytes]] | None = None, *, announce: bool = True
) -> Protection:
    """Each enabled ESP's checks; ConfigurationError if one is unprotected or a key is unusable.

    ``announce`` logs one line per ESP saying how it is protected (once per gateway, not per worker process).
    """
    auth = BasicAuth(settings.webhook_secret)
    try:
        verifiers = build_verifiers(settings, fetch)
    except InvalidKey as error:
        raise ConfigurationError(str(error)) from None
    enabled = frozenset(settings.enabled_esps)
    _refuse_unprotected(settings, auth, verifiers, enabled)
    if announce:
        _log_protection(settings, auth, verifiers, enabled)
    return Protection(auth, verifiers, enabled)


def create_app(
    settings: GatewaySettings | None = None,
    *,
    fetch: Callable[[str], Awaitable[bytes]] | None = None,
    announce: bool = True,
) -> FastAPI:
    """The gateway app. ``fetch`` (GET a URL, return its body) replaces the SNS verifier's HTTP client.

    ``announce``: log how each ESP is protected (check_protection); a worker process leaves it to its parent.
    """
    settings = settings or GatewaySettings()
    auth, verifiers, enabled = check_protection(settings, fetch, announce=announce)

    kafka_log = logging.getLogger("espstream.kafka")  # librdkafka's own messages, as log records
    producer = AckingProducer(
        settings.producer(**{"message.max.bytes": settings.max_record_bytes, "logger": kafka_log}), settings.ack_timeout_seconds
    )
    static_headers = [(raw.GATEWAY_VERSION, __version__.encode())]
    metrics = RequestMetrics()
    metrics_server = None
    if settings.gateway_metrics_port:
        try:  # now, so that a taken port stops the gateway before it listens for webhooks
            metrics_server = serve(settings.metrics_host, settings.gateway_metrics_port, "ESPSTREAM_GATEWAY_METRICS_PORT", log)
        except OSError as error:
            raise ConfigurationError(str(error)) from None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        producer.start()
        try:
            yield
        finally:
            await producer.stop()
            if metrics_server is not None:
                await asyncio.to_thread(metrics_server.shutdown)  # waits for its serving loop to notice
                metrics_server.server_close()

    app = FastAPI(title="espstream gateway", version=__version__, lifespan=lifespan)
    # A refused request's connection is closed: its body may be unread, or still arriving.
    unauthorized_headers = {"WWW-Authenticate": 'Basic realm="espstream webhooks", charset="UTF-8"', **CLOSE}
    unavailable_headers = {"Retry-After": str(settings.retry_after_seconds)}

    async def receive_webhook(esp: str, request: Request) -> Response:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        # uvicorn runs each request in a task of its own, whose context ends with it: every line
        # logged for this request carries its id, those of after-answer steps and uvicorn's included.
        REQUEST_ID.set(request_id)
        esp_label = metrics.esp_label(esp)
        metrics.in_flight.inc()
        reason, body_bytes = "error", None  # unless the handler returns
        try:
            outcome = await handle_webhook(esp, request, request_id)
            reason, body_bytes = outcome.reason, outcome.body_bytes
        finally:
            metrics.in_flight.dec()
            metrics.answered(esp_label, reason)
            if body_bytes is not None:
                metrics.body_read(esp_label, body_bytes)
            if settings.gateway_access_log or reason != "stored":
                _log_access(esp_label, reason, body_bytes, time.perf_counter() - started)
        if outcome.reason != "stored":  # a stored webhook's answer was made with it
            outcome.response.headers["X-Request-Id"] = request_id
        return outcome.response

    async def handle_webhook(esp: str, request: Request, request_id: str) -> Outcome:
        if esp not in enabled:
            return Outcome("disabled" if esp in ESP_SLUGS else "unknown_esp", _not_found(esp))
        if auth and not auth.accepts(request.headers.get("authorization")):
            return Outcome("auth", JSONResponse(
                {"detail": "missing or wrong basic auth"}, status_code=401, headers=unauthorized_headers
            ))
        content_types = request.headers.getlist("content-type")
        if len(content_types) > 1 or not all(value.isascii() for value in content_types):
            # The signature is checked against one reading of the body, the normalizer must make the same one.
            return Outcome("content_type", JSONResponse(
                {"detail": "one ASCII Content-Type header at most"}, status_code=400, headers=CLOSE
            ))
        try:
            body = await _read_body(request, settings.max_body_bytes, settings.body_timeout_seconds)
        except ClientGone:  # nobody to answer; not a server error worth a traceback
            log.info("webhook for %s: the client closed the connection before sending its body", esp)
            return Outcome("client_gone", Response(status_code=400, headers=CLOSE))
        except BodyTooLarge:
            return Outcome("too_large", JSONResponse(
                {"detail": f"body over {settings.max_body_bytes} bytes"}, status_code=413, headers=CLOSE
            ))
        except BodyTooSlow:
            return Outcome("too_slow", JSONResponse(
                {"detail": f"body not received within {settings.body_timeout_seconds}s"}, status_code=408, headers=CLOSE
            ))
        verifier = verifiers.get(esp)
        signed = None
        if verifier is not None:
            signed = _signed_request(esp, request, body)
            try:
                await verifier.verify(signed)
            except SignatureError as error:
                log.warning("webhook for %s refused (400): %s", esp, error)
                return Outcome("signature", JSONResponse(
                    {"detail": f"signature check failed: {error}"}, status_code=400, headers=CLOSE
                ), len(body))
            except SignatureUnavailable as error:  # e.g. the SNS certificate host is down: the ESP retries
                log.warning("webhook for %s not checked, answering 503: %s", esp, error)
                return Outcome("signature_unavailable", JSONResponse(
                    {"detail": "signature cannot be checked now, retry later"}, status_code=503, headers=unavailable_headers
                ), len(body))
        headers = _record_headers(esp, request, request_id) + static_headers
        sent_at = time.perf_counter()
        try:
            await producer.send(settings.raw_topic, body, headers)
        except BrokerUnavailable as error:
            log.warning("webhook %s for %s not stored, answering 503: %s", request_id, esp, error)
            return Outcome("broker", JSONResponse(
                {"detail": "not stored, retry later"}, status_code=503, headers=unavailable_headers
            ), len(body))
        metrics.ack_seconds.observe(time.perf_counter() - sent_at)
        after_stored = getattr(verifier, "after_stored", None)
        background = None
        if after_stored is not None and signed is not None:
            background = BackgroundTask(_run_after_stored, after_stored, signed, request_id)
        return Outcome(
            "stored", Response(status_code=200, headers={"X-Request-Id": request_id}, background=background), len(body)
        )

    async def probe(esp: str) -> Response:
        # Some ESPs check a webhook URL with HEAD when it is configured.
        return Response(status_code=200 if esp in enabled else 404)

    for path in ("/webhooks/{esp}/tracking/", "/webhooks/{esp}/tracking"):
        main_route = path.endswith("/")
        app.router.add_api_route(path, receive_webhook, methods=["POST"], include_in_schema=main_route,
                                 summary="Receive an ESP tracking webhook", route_class_override=WebhookRoute)
        app.add_api_route(path, probe, methods=["HEAD"], include_in_schema=False)

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The broker answers and the raw topic exists")
    async def readyz() -> Response:
        ready = await asyncio.to_thread(producer.topic_available, settings.raw_topic, READY_TIMEOUT_SECONDS)
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    return app


def _refuse_unprotected(
    settings: GatewaySettings, auth: BasicAuth, verifiers: Mapping[str, Verifier], enabled: frozenset[str]
) -> None:
    """Fail closed: every enabled ESP needs basic auth or its signature key, unless explicitly allowed."""
    if auth or settings.allow_unauthenticated:
        return
    unprotected = [esp for esp in ESP_SLUGS if esp in enabled and esp not in verifiers]
    if unprotected:
        raise ConfigurationError(
            f"no webhook credentials for {', '.join(unprotected)}: set ESPSTREAM_WEBHOOK_SECRET to "
            "'user:password', or each ESP's signing key (e.g. ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY; "
            "ESPSTREAM_AMAZON_SES_TOPIC_ARNS for amazon_ses) and ESPSTREAM_ENABLED_ESPS to the ESPs you use "
            "(or ESPSTREAM_ALLOW_UNAUTHENTICATED=1 for a development stack no one else can reach)"
        )


def _log_protection(
    settings: GatewaySettings, auth: BasicAuth, verifiers: Mapping[str, Verifier], enabled: frozenset[str]
) -> None:
    """One line per ESP saying how its webhooks are protected."""
    for esp in ESP_SLUGS:
        if esp not in enabled:
            log.info("%s: disabled (404)", esp)
            continue
        checks = (["basic auth"] if auth else []) + ([verifiers[esp].description] if esp in verifiers else [])
        if not checks:
            log.warning("%s: NOT AUTHENTICATED (ESPSTREAM_ALLOW_UNAUTHENTICATED=1): accepted from anyone", esp)
        elif esp == "amazon_ses" and esp not in verifiers:
            log.info("%s: %s; SNS signatures not checked (set ESPSTREAM_AMAZON_SES_TOPIC_ARNS)", esp, checks[0])
        else:
            log.info("%s: %s", esp, " + ".join(checks))


def _log_access(esp: str, reason: str, body_bytes: int | None, seconds: float) -> None:
    status = STATUS_OF_REASON[reason]
    access_log.info(
        "webhook %s: %d %s", esp, status, reason,
        extra={"esp": esp, "status": status, "reason": reason, "body_bytes": body_bytes,
               "duration_ms": round(seconds * 1000, 3), "pid": os.getpid()},  # which worker process answered
    )


def _not_found(esp: str) -> Response:
    if esp in ESP_SLUGS:
        detail = f"disabled ESP {esp!r}"
    else:  # most likely a typo in the URL given to the ESP
        detail = f"unknown ESP {esp!r}; the ESPs are {', '.join(ESP_SLUGS)}"
    return JSONResponse({"detail": detail}, status_code=404, headers=CLOSE)


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, refused as soon as it is known to be over ``limit`` bytes or late by ``timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTooSlow from None
    except ClientDisconnect:
        raise ClientGone from None
    return b"".join(chunks)


def _signed_request(esp: str, request: Request, body: bytes) -> SignedRequest:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():  # lower-cased names
        # Repeated headers joined as a WSGI server joins them, as anymail sees them.
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return SignedRequest(
        esp=esp,
        url=_request_url(request),
        headers=headers,
        body=body,
        content_type=request.headers.get("content-type"),
    )


def _request_url(request: Request) -> str:
    """The URL the client asked for, as Django's build_absolute_uri() rebuilds it (scheme from trusted proxies)."""
    scope = request.scope
    host = request.headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    url = f"{scope['scheme']}://{host}{path.decode('latin-1')}"
    return f"{url}?{query.decode('latin-1')}" if query else url


async def _run_after_stored(
    step: Callable[[SignedRequest], Awaitable[None]], request: SignedRequest, request_id: str
) -> None:
    try:
        await step(request)
    except Exception:  # the webhook is stored; a failed follow-up must not look like a server crash
        log.exception("after storing webhook %s for %s", request_id, request.esp)


def _record_headers(esp: str, request: Request, request_id: str) -> raw.Headers:
    scope = request.scope
    client = scope.get("client")
    headers = [
        (raw.ESP, esp.encode()),
        (raw.RECEIVED_AT, datetime.now(UTC).isoformat().encode()),
        (raw.REQUEST_ID, request_id.encode()),
        (raw.QUERY_STRING, scope.get("query_string", b"")),
        (raw.CLIENT_ADDR, client[0].encode() if client else b""),
    ]
    for name, value in scope["headers"]:  # ASGI: lower-cased bytes
        key = name.decode("latin-1")
        if key == "content-type":
            headers.append((raw.CONTENT_TYPE, value))
        if key not in raw.CREDENTIAL_HEADERS:
            headers.append((raw.HTTP_PREFIX + key, value))
    return headers
