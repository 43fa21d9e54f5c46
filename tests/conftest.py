"""Shared fixtures: a real embedded broker on a free port, the settings pointing at it."""

from collections.abc import Iterator

import pytest

from espstream.config import CommonSettings
from espstream.embedded import EmbeddedBroker, free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One Tansu broker for the whole session. Tests use their own topic names."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(free_port(), log_path=log) as running:
        yield running
