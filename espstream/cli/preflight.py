"""Before a command starts: is the broker, the schema registry, there? One line if not, within seconds.

Without it a command met an absent broker deep inside librdkafka: ``dlq list``
waited past 25 s, others printed 15 s of connection errors, then a traceback.
The checks use the command's own settings (security extras included), and
librdkafka's log lines go nowhere meanwhile: the answer is the one line.
"""

import logging

from espstream.plumbing.config import CommonSettings

# Each check answers within this long: both, with the start of Python, within 10 s.
TIMEOUT_SECONDS = 4.0
UNREACHABLE = 3  # the exit status

BROKER = "broker"
REGISTRY = "registry"

_QUIET = logging.getLogger("espstream.cli.preflight.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def unreachable(needs: set[str], settings: CommonSettings) -> str | None:
    """Why a command needing ``needs`` cannot run, or None: the first of broker, registry that does not answer."""
    if BROKER in needs:
        problem = _broker(settings)
        if problem:
            return problem
    if REGISTRY in needs:
        return _registry(settings)
    return None


def _broker(settings: CommonSettings) -> str | None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(settings.kafka(logger=_QUIET))
    try:
        admin.list_topics(timeout=TIMEOUT_SECONDS)
    except KafkaException as error:
        return _said("Kafka broker", "ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS", "-b", settings.kafka_bootstrap_servers, error.args[0].str())
    return None


def _registry(settings: CommonSettings) -> str | None:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from espstream.schemas.avro import registry_unreachable

    client = SchemaRegistryClient({**settings.registry(), "timeout": TIMEOUT_SECONDS, "max.retries": 0})
    try:
        client.get_subjects()
    except Exception as error:  # whatever the HTTP client raises; only an outage is this check's business
        if not registry_unreachable(error):
            return None  # it answered: the command says what the answer means
        url = _without_credentials(settings.schema_registry_url)
        return _said("schema registry", "ESPSTREAM_SCHEMA_REGISTRY_URL", "--registry-url", url, error)
    return None


def _said(what: str, setting: str, flag: str, value: str, error: object) -> str:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"no {what} answered at {setting}={value} within {TIMEOUT_SECONDS:.0f} s ({reason}):"
        f" is `espstream run` running? (else give {flag} or {setting} where one runs)"
    )


def _without_credentials(url: str) -> str:
    """The URL as it may be printed: a ``user:password@`` in it left out."""
    import httpx

    try:
        return str(httpx.URL(url).copy_with(userinfo=b""))
    except httpx.InvalidURL:
        return url
