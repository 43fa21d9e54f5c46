"""docker-compose.yml cannot run here (no Docker engine): check what can be checked."""

import tomllib
from pathlib import Path

import pytest
import yaml

from espstream.cli import parser
from espstream.consumers.settings import ConsumerSettings
from espstream.gateway.settings import GatewaySettings
from espstream.normalizer.settings import NormalizerSettings
from espstream.plumbing.config import RegistrySettings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ESPSTREAM_SERVICES = ["topics", "gateway", "normalizer", "example-consumer"]
KNOWN_SETTINGS = {
    f"ESPSTREAM_{name.upper()}"
    for settings in (GatewaySettings, NormalizerSettings, ConsumerSettings, RegistrySettings)
    for name in settings.model_fields
}


def test_the_stack_has_kafka_a_registry_and_every_espstream_service() -> None:
    services = COMPOSE["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "KAFKA_PROCESS_ROLES" in services["kafka"]["environment"]  # KRaft, no ZooKeeper
    assert "schema-registry" in services
    for name in ESPSTREAM_SERVICES:
        assert services[name]["build"] == "."


@pytest.mark.parametrize("service", ESPSTREAM_SERVICES)
def test_each_command_is_a_cli_command(service: str) -> None:
    command = COMPOSE["services"][service]["command"]
    args = parser().parse_args(command)  # exits (SystemExit) on an unknown command
    assert callable(args.func)


@pytest.mark.parametrize("service", ESPSTREAM_SERVICES)
def test_each_environment_name_is_a_real_setting(service: str) -> None:
    environment = COMPOSE["services"][service]["environment"]
    unknown = {name for name in environment if name.startswith("ESPSTREAM_")} - KNOWN_SETTINGS
    assert not unknown


def test_the_dockerfile_copies_every_folder_the_wheel_is_built_from() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    folders = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    assert set(folders) >= {"espstream", "gateway", "normalizer", "schemas", "consumers", "plumbing", "registry"}
    for folder in folders:
        assert f"COPY {folder} ./{folder}" in dockerfile
