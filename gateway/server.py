"""Run the gateway with uvicorn."""

import uvicorn

from .app import create_app
from .settings import GatewaySettings


def serve(settings: GatewaySettings | None = None) -> None:
    settings = settings or GatewaySettings()
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        access_log=False,
        log_level="info",
        # A slow client cannot pin a connection forever.
        timeout_keep_alive=5,
    )
