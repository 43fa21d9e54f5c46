"""The gateway's anchors: FastAPI POST endpoints that do only what every webhook receiver must.

``bare``: read the body and answer 200, nothing else. ``acked`` (``--acked``): the same, but
answer only once the broker acknowledged the body (librdkafka's ``produce``, acks=all, and its
delivery callback resolving the request's future from a poll thread, as confluent-kafka's own
asyncio example does): the least an endpoint that answers after the broker's ack can do.

``python -m benchmarks.bare_app [--acked]`` serves it through ``espstream.gateway.server.serve``
itself, so uvicorn runs with exactly the gateway's options (uvloop, httptools,
access log off, keep-alive timeout); ESPSTREAM_GATEWAY_HOST/PORT say where, and
ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS / ESPSTREAM_RAW_TOPIC which broker and topic.
"""

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from confluent_kafka import Producer
from fastapi import FastAPI, Request, Response

import espstream.gateway.server
from espstream.gateway.settings import GatewaySettings


def create_bare_app(_settings: GatewaySettings | None = None) -> FastAPI:
    app = FastAPI(title="bare POST endpoint")

    @app.post("/webhooks/{esp}/tracking/")
    async def receive(esp: str, request: Request) -> Response:
        await request.body()
        return Response(status_code=200)

    return app


def create_acked_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    producer = Producer(settings.producer(**{"acks": "all", "linger.ms": 2}))
    stopping = threading.Event()

    def poll() -> None:  # delivery callbacks run here, off the event loop
        while not stopping.is_set():
            producer.poll(0.1)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        poller = threading.Thread(target=poll, name="kafka-poll", daemon=True)
        poller.start()
        yield
        stopping.set()
        poller.join()
        producer.flush(10)

    app = FastAPI(title="bare POST endpoint, answered after the broker's ack", lifespan=lifespan)

    @app.post("/webhooks/{esp}/tracking/")
    async def receive(esp: str, request: Request) -> Response:
        body = await request.body()
        loop = asyncio.get_running_loop()
        acked = loop.create_future()

        def delivered(error: object, _message: object) -> None:
            loop.call_soon_threadsafe(acked.set_result, error)

        producer.produce(settings.raw_topic, body, on_delivery=delivered)
        error = await acked
        return Response(status_code=200 if error is None else 503)

    return app


def main() -> None:
    # The same uvicorn.run call, another app.
    espstream.gateway.server.create_app = create_acked_app if "--acked" in sys.argv[1:] else create_bare_app
    espstream.gateway.server.serve(GatewaySettings())


if __name__ == "__main__":
    main()
