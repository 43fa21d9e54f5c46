"""docker-compose.yml cannot run here (no Docker engine): check what can be checked."""

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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
} | {"ESPSTREAM_HEALTHCHECK_URL"}  # the image's HEALTHCHECK reads it, not a service
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# Each espstream service's healthcheck URL and the setting that decides the port it must name.
PROBED = {
    "gateway": "ESPSTREAM_GATEWAY_PORT",
    "normalizer": "ESPSTREAM_NORMALIZER_METRICS_PORT",
    "example-consumer": "ESPSTREAM_CONSUMER_METRICS_PORT",
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


def test_kafka_keeps_its_records_on_the_volume() -> None:
    kafka = COMPOSE["services"]["kafka"]
    [mount] = [volume for volume in kafka["volumes"] if volume.split(":")[0] in COMPOSE["volumes"]]
    assert mount.split(":")[1] == kafka["environment"]["KAFKA_LOG_DIRS"]
    assert kafka["environment"]["CLUSTER_ID"]  # the same id at every start: KRaft formats the directory once


def test_services_start_in_order_on_health() -> None:
    services = COMPOSE["services"]
    assert services["schema-registry"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ESPSTREAM_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == depends["schema-registry"]["condition"] == "service_healthy"
    for name in PROBED:
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_the_registry_healthcheck_uses_what_its_image_has() -> None:
    registry = COMPOSE["services"]["schema-registry"]
    assert registry["image"].startswith("confluentinc/cp-schema-registry:")  # a UBI image that ships curl
    assert registry["healthcheck"]["test"][:2] == ["CMD", "curl"]
    assert registry["healthcheck"]["test"][-1] == f"http://localhost:{registry['environment']['SCHEMA_REGISTRY_LISTENERS'].rsplit(':', 1)[1]}/subjects"


@pytest.mark.parametrize("service", sorted(PROBED))
def test_each_healthcheck_asks_the_port_its_service_listens_on(service: str) -> None:
    definition = COMPOSE["services"][service]
    port = definition["environment"][PROBED[service]]
    url = definition["healthcheck"]["test"][-1] if "healthcheck" in definition else definition["environment"]["ESPSTREAM_HEALTHCHECK_URL"]
    assert f"//127.0.0.1:{port}/readyz" in url
    assert port in DOCKERFILE.split("EXPOSE", 1)[1].splitlines()[0].split()


def test_the_image_checks_its_health_with_its_own_python() -> None:
    assert DOCKERFILE.startswith("#") and "\nFROM python:3.11-slim\n" in DOCKERFILE  # python, no curl
    assert "\nHEALTHCHECK " in DOCKERFILE and 'CMD ["python", "-c",' in DOCKERFILE
    assert "ENV ESPSTREAM_HEALTHCHECK_URL=http://127.0.0.1:8000/readyz" in DOCKERFILE


def test_the_image_installs_the_pinned_versions() -> None:
    assert "COPY pyproject.toml README.md constraints.txt ./" in DOCKERFILE
    assert "pip install --no-cache-dir -c constraints.txt ." in DOCKERFILE
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().split() if "==" in line)
    pins = {canonicalize_name(name): version for name, version in pins.items()}
    for requirement in map(Requirement, project["dependencies"] + project["optional-dependencies"]["django"]):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in constraints.txt (make constraints)"
        assert requirement.specifier.contains(pins[name]), f"constraints.txt pins {name}=={pins[name]}, pyproject wants {requirement}"
        assert metadata.version(name) == pins[name], f"the tests run {name} {metadata.version(name)}, the image {pins[name]}"
