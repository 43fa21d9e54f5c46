"""The HTTP API: the part of Confluent Schema Registry's REST API that Avro clients use.

Endpoints are plain ``def``: FastAPI runs them in its thread pool, so Kafka
writes and locks never block the event loop. The lifespan loads the state
before uvicorn opens its socket: no request is answered from a half-read topic.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from . import errors
from .avro_rules import canonical_schema
from .schema_log import SchemaLog
from .service import DEFAULT_COMPATIBILITY, Registry
from .state import SubjectVersion, schema_guid

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
MAX_VERSION = 2**31 - 1
T = TypeVar("T")


class RegistryResponse(JSONResponse):
    media_type = MEDIA_TYPE


class SchemaRequest(BaseModel):
    """Body of register, lookup and compatibility requests (Confluent's ``RegisterSchemaRequest``)."""

    model_config = ConfigDict(populate_by_name=True)

    schema_text: str = Field(alias="schema")
    schema_type: str | None = Field(default=None, alias="schemaType")
    references: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None
    rule_set: dict[str, Any] | None = Field(default=None, alias="ruleSet")


class ConfigRequest(BaseModel):
    # confluent-kafka's set_compatibility sends "compatibility", its set_config "compatibilityLevel".
    compatibility: str | None = None
    compatibility_level: str | None = Field(default=None, alias="compatibilityLevel")


def create_app(
    kafka_config: dict[str, Any],
    topic: str = "_schemas",
    *,
    default_compatibility: str = DEFAULT_COMPATIBILITY,
    startup_timeout: float = 30.0,
    ack_timeout: float = 10.0,
    idempotent: bool = True,
) -> FastAPI:
    """The registry app; its state lives in ``topic`` on the cluster ``kafka_config`` points at.

    A change not acknowledged by Kafka within ``ack_timeout`` seconds is answered with a 500.
    ``idempotent``: whether its producer is (ESPSTREAM_KAFKA_IDEMPOTENCE).
    """
    registry = Registry(SchemaLog(kafka_config, topic, ack_timeout, idempotent), default_compatibility)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await asyncio.to_thread(registry.start, startup_timeout)
        except Exception as error:
            app.state.startup_error = error  # for whoever started the server in-process
            raise
        try:
            yield
        finally:
            await asyncio.to_thread(registry.close)

    app = FastAPI(
        title="espstream development schema registry",
        lifespan=lifespan,
        default_response_class=RegistryResponse,
    )
    _install_error_bodies(app)
    app.include_router(_schema_routes(registry))
    app.include_router(_subject_routes(registry))
    app.include_router(_config_routes(registry))
    return app


def _schema_routes(registry: Registry) -> APIRouter:
    router = APIRouter()

    @router.get("/")
    def root() -> dict[str, Any]:
        return {}  # as Confluent: a cheap liveness probe

    @router.get("/schemas/types")
    def schema_types() -> list[str]:
        return ["AVRO"]

    # The format, subject and reference_format parameters change nothing for Avro without references.
    @router.get("/schemas/ids/{schema_id}")
    def schema_by_id(schema_id: int) -> dict[str, Any]:
        text = registry.schema(schema_id)
        return {"schema": text, "guid": schema_guid(text)}

    @router.get("/schemas/ids/{schema_id}/schema")
    def raw_schema_by_id(schema_id: int) -> Response:
        return Response(registry.schema(schema_id), media_type=MEDIA_TYPE)

    @router.get("/schemas/guids/{guid}")
    def schema_by_guid(guid: str) -> dict[str, Any]:
        schema_id, text = registry.schema_by_guid(guid)
        return {"schema": text, "id": schema_id, "guid": guid}

    @router.get("/schemas/ids/{schema_id}/versions")
    def schema_versions(
        schema_id: int, subject: str | None = None, offset: int = 0, limit: int = -1
    ) -> list[dict[str, Any]]:
        uses = [{"subject": s, "version": v} for s, v in registry.uses_of(schema_id) if subject in (None, s)]
        return _page(uses, offset, limit)

    @router.get("/schemas/ids/{schema_id}/subjects")
    def schema_subjects(schema_id: int, subject: str | None = None, offset: int = 0, limit: int = -1) -> list[str]:
        subjects = sorted({s for s, _ in registry.uses_of(schema_id) if subject in (None, s)})
        return _page(subjects, offset, limit)

    return router


def _subject_routes(registry: Registry) -> APIRouter:
    router = APIRouter()

    @router.get("/subjects")
    def subjects(
        prefix: Annotated[str | None, Query(alias="subjectPrefix")] = None,
        deleted_only: bool = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[str]:
        if deleted_only:
            return []  # nothing is ever deleted here
        # ":*:" is Confluent's "every context"; this registry has only the default one.
        wanted = "" if prefix in (None, ":*:") else prefix
        return _page([s for s in registry.subjects() if s.startswith(wanted)], offset, limit)

    @router.get("/subjects/{subject}/versions")
    def versions(subject: str, deleted_only: bool = False, offset: int = 0, limit: int = -1) -> list[int]:
        found = registry.versions(subject)
        return [] if deleted_only else _page(found, offset, limit)

    @router.get("/subjects/{subject}/versions/{version}")
    def version(subject: str, version: str) -> dict[str, Any]:
        return _version_body(registry.version(subject, _version_number(version)))

    @router.get("/subjects/{subject}/versions/{version}/schema")
    def raw_version_schema(subject: str, version: str) -> Response:
        return Response(registry.version(subject, _version_number(version)).schema, media_type=MEDIA_TYPE)

    @router.post("/subjects/{subject}/versions")
    def register(subject: str, request: SchemaRequest) -> dict[str, Any]:
        entry = registry.register(subject, _canonical(request))
        return {"id": entry.schema_id, "version": entry.version, "guid": entry.guid}

    @router.post("/subjects/{subject}")
    def lookup(subject: str, request: SchemaRequest) -> dict[str, Any]:
        return _version_body(registry.lookup(subject, _canonical(request)))

    @router.post("/compatibility/subjects/{subject}/versions/{version}")
    def check_version(subject: str, version: str, request: SchemaRequest, verbose: bool = False) -> dict[str, Any]:
        problems = registry.check_version(subject, _canonical(request), _version_number(version))
        return _compatibility_body(problems, verbose)

    @router.post("/compatibility/subjects/{subject}/versions")
    def check_all(subject: str, request: SchemaRequest, verbose: bool = False) -> dict[str, Any]:
        return _compatibility_body(registry.check_all(subject, _canonical(request)), verbose)

    return router


def _config_routes(registry: Registry) -> APIRouter:
    router = APIRouter()

    @router.get("/config")
    def global_config() -> dict[str, Any]:
        return {"compatibilityLevel": registry.global_compatibility()}

    @router.put("/config")
    def set_global_config(request: ConfigRequest) -> dict[str, Any]:
        return {"compatibility": registry.set_compatibility(None, _requested_level(request))}

    @router.get("/config/{subject}")
    def subject_config(
        subject: str, default_to_global: Annotated[bool, Query(alias="defaultToGlobal")] = False
    ) -> dict[str, Any]:
        level = registry.subject_compatibility(subject)
        if level is None and default_to_global:
            level = registry.global_compatibility()
        if level is None:
            raise errors.RegistryError(
                404,
                errors.SUBJECT_COMPATIBILITY_NOT_CONFIGURED,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )
        return {"compatibilityLevel": level}

    @router.put("/config/{subject}")
    def set_subject_config(subject: str, request: ConfigRequest) -> dict[str, Any]:
        return {"compatibility": registry.set_compatibility(subject, _requested_level(request))}

    return router


def _canonical(request: SchemaRequest) -> str:
    if (request.schema_type or "AVRO").upper() != "AVRO":
        raise errors.invalid_schema(f"schema type {request.schema_type}: this development registry knows AVRO only")
    if request.references:
        raise errors.invalid_schema("schema references are not supported by this development registry")
    if request.metadata or request.rule_set:
        raise errors.invalid_schema("schema metadata and rule sets are not supported by this development registry")
    return canonical_schema(request.schema_text)


def _version_number(text: str) -> int | None:
    """A version path parameter: a number, or ``None`` for "latest" (also spelled -1)."""
    if text == "latest":
        return None
    try:
        number = int(text)
    except ValueError:
        raise errors.invalid_version(text) from None
    if number == -1:
        return None
    if not 1 <= number <= MAX_VERSION:
        raise errors.invalid_version(text)
    return number


def _requested_level(request: ConfigRequest) -> str:
    level = request.compatibility or request.compatibility_level
    if level is None:
        raise errors.RegistryError(422, errors.INVALID_COMPATIBILITY_LEVEL, "No compatibility level in the request")
    return level


def _version_body(entry: SubjectVersion) -> dict[str, Any]:
    return {
        "subject": entry.subject,
        "version": entry.version,
        "id": entry.schema_id,
        "guid": entry.guid,
        "schema": entry.schema,
    }


def _compatibility_body(problems: list[str], verbose: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"is_compatible": not problems}
    if verbose:
        body["messages"] = problems
    return body


def _page(items: Sequence[T], offset: int, limit: int) -> list[T]:
    page = list(items[max(offset, 0) :])
    return page[:limit] if limit > 0 else page


def _install_error_bodies(app: FastAPI) -> None:
    """Every error as Confluent's ``{"error_code": ..., "message": ...}``, which clients parse."""

    @app.exception_handler(errors.RegistryError)
    async def registry_error(_request: Request, error: errors.RegistryError) -> Response:
        return RegistryResponse(error.body(), status_code=error.status)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> Response:
        # Unknown paths (404) and methods (405), in the words Confluent's server uses.
        message = f"HTTP {error.status_code} {HTTPStatus(error.status_code).phrase}"
        return RegistryResponse(
            {"error_code": error.status_code, "message": message},
            status_code=error.status_code,
            headers=error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> Response:
        details = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()
        )
        return RegistryResponse({"error_code": 422, "message": f"Invalid request: {details}"}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> Response:
        # Starlette still logs the traceback; the client gets a body it can parse.
        return RegistryResponse(
            {"error_code": 500, "message": f"Internal error: {type(error).__name__}: {error}"}, status_code=500
        )
