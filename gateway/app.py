"""The webhook gateway: authenticate, write the exact body to the raw topic, answer after the ack."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from espstream import __version__
from schemas import raw
from schemas.esps import ESP_SLUGS

from .auth import BasicAuth
from .producer import AckingProducer, BrokerUnavailable
from .settings import GatewaySettings

log = logging.getLogger("espstream.gateway")

READY_TIMEOUT_SECONDS = 2.0


class ConfigurationError(Exception):
    """The gateway must not start with these settings."""


class BodyTooLarge(Exception):
    pass


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


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    auth = BasicAuth(settings.webhook_secret)
    if not auth and not settings.allow_unauthenticated:
        raise ConfigurationError(
            "no webhook credentials: set ESPSTREAM_WEBHOOK_SECRET to 'user:password' "
            "(or ESPSTREAM_ALLOW_UNAUTHENTICATED=1 for a development stack no one else can reach)"
        )
    if not auth:
        log.warning("ESPSTREAM_ALLOW_UNAUTHENTICATED=1: webhooks are accepted from ANYONE, without credentials")

    producer = AckingProducer(
        settings.kafka(**{"message.max.bytes": settings.max_record_bytes}), settings.ack_timeout_seconds
    )
    static_headers = [(raw.GATEWAY_VERSION, __version__.encode())]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        producer.start()
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(title="espstream gateway", version=__version__, lifespan=lifespan)
    unauthorized_headers = {"WWW-Authenticate": 'Basic realm="espstream webhooks", charset="UTF-8"'}
    unavailable_headers = {"Retry-After": str(settings.retry_after_seconds)}

    async def receive_webhook(esp: str, request: Request) -> Response:
        if esp not in ESP_SLUGS:
            return JSONResponse({"detail": f"unknown ESP {esp!r}"}, status_code=404)
        if auth and not auth.accepts(request.headers.get("authorization")):
            return JSONResponse(
                {"detail": "missing or wrong basic auth"}, status_code=401, headers=unauthorized_headers
            )
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except BodyTooLarge:
            return JSONResponse({"detail": f"body over {settings.max_body_bytes} bytes"}, status_code=413)
        request_id = uuid.uuid4().hex
        headers = _record_headers(esp, request, request_id) + static_headers
        try:
            await producer.send(settings.raw_topic, body, headers)
        except BrokerUnavailable as error:
            log.warning("webhook %s for %s not stored, answering 503: %s", request_id, esp, error)
            return JSONResponse(
                {"detail": "not stored, retry later"}, status_code=503, headers=unavailable_headers
            )
        return Response(status_code=200, headers={"X-Request-Id": request_id})

    async def probe(esp: str) -> Response:
        # Some ESPs check a webhook URL with HEAD when it is configured.
        return Response(status_code=200 if esp in ESP_SLUGS else 404)

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


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


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
