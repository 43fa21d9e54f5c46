"""The gateway's anchor: a FastAPI POST endpoint that reads the body and answers 200, nothing else.

``python -m benchmarks.bare_app`` serves it through ``espstream.gateway.server.serve``
itself, so uvicorn runs with exactly the gateway's options (uvloop, httptools,
access log off, keep-alive timeout); ESPSTREAM_GATEWAY_HOST/PORT say where.
"""

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


def main() -> None:
    espstream.gateway.server.create_app = create_bare_app  # the same uvicorn.run call, another app
    espstream.gateway.server.serve(GatewaySettings())


if __name__ == "__main__":
    main()
