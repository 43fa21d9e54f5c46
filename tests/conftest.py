"""Shared fixtures: a real embedded broker on a free port, the settings pointing at it."""

from collections.abc import Iterator

import pytest

from espstream.plumbing.config import CommonSettings
from espstream.embedded import EmbeddedBroker, free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One Tansu broker for the whole session. Tests use their own topic names."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(free_port(), log_path=log) as running:
        yield running


@pytest.fixture(scope="session")
def registry_url(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The development schema registry, as `espstream registry` runs it."""
    from tests.services import Service

    port = free_port()
    settings = {
        "ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "ESPSTREAM_REGISTRY_HOST": "127.0.0.1",
        "ESPSTREAM_REGISTRY_PORT": str(port),
    }
    service = Service(["registry"], settings, tmp_path_factory.mktemp("registry") / "registry.log").start(port)
    yield f"http://127.0.0.1:{port}"
    service.stop()


def settings_from_env(env: dict[str, str]) -> CommonSettings:
    """The settings a service started with ``env`` reads."""
    return CommonSettings(**{name.removeprefix("ESPSTREAM_").lower(): value for name, value in env.items()})
