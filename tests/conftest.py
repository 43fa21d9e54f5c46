"""Shared fixtures: a real embedded broker on a free port, the settings pointing at it.

Every test that needs the broker is marked ``broker`` here, so ``pytest -m 'not broker'``
(``make test-quick``) runs the rest; tests/unit holds none of them, and collection says so.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from espstream.embedded import EmbeddedBroker, free_port
from espstream.plumbing.config import CommonSettings

# Fixtures shared by unit and integration tests: the fake SNS host and its signers.
pytest_plugins = ["tests.support.sns"]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One Tansu broker for the whole session. Tests use their own topic names."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(free_port(), log_path=log) as running:
        yield running


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of the test's own on durable storage (SeaweedFS) in tmp_path: ``kill()`` it, ``start()`` it again."""
    with EmbeddedBroker(free_port(), log_path=tmp_path / "tansu.log", data_dir=tmp_path / "broker") as running:
        yield running


@pytest.fixture(scope="session")
def registry_url(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The development schema registry, as `espstream registry` runs it."""
    from tests.support.services import Service

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


UNIT_TESTS = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    misplaced = []
    for item in items:
        if {"broker", "durable_broker"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)
            if item.path.is_relative_to(UNIT_TESTS):
                misplaced.append(item.nodeid)
    if misplaced:
        raise pytest.UsageError("tests/unit is for tests without the broker; move to tests/integration: " + ", ".join(misplaced))
