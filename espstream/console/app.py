"""The console's FastAPI app: its pages and the two actions (redrive, over POST forms).

Pages are Jinja2 templates with autoescape on: every value, a dead letter's
body first, is escaped. The responses forbid scripts altogether (CSP), so a
value that slipped through escaping could still not run.
"""

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from espstream.plumbing.deadletters import NoSuchLetter, event_esp, event_text, read_letter, render_letter
from espstream.plumbing.times import format_time
from espstream.schemas.avro import EVENT_TYPES, EventDeserializer, registry_unreachable
from espstream.schemas.esps import ESP_SLUGS

from . import charts, letters
from .index import EventIndex, Indexed, since_hours, timeline_order
from .recent import RecentEvents
from .security import CSRF_FIELD, Guard
from .settings import ConsoleSettings
from .status import StatusPanel, status_panel

log = logging.getLogger("espstream.console")

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
TEMPLATES.env.filters["time"] = lambda moment: format_time(moment) if moment is not None else ""
TEMPLATES.env.filters["number"] = lambda value, digits=0: f"{value:,.{digits}f}"
# No script runs on any page: a value that escaped escaping stays text.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a form POST carries "Origin: null", which the CSRF check refuses.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
HOURS = tuple(charts.BUCKET_MINUTES)


@dataclass
class Console:
    """What the pages read: the settings, the index, the recent-events reader, the status view if any."""

    settings: ConsoleSettings
    index: EventIndex
    recent: RecentEvents
    decode: EventDeserializer
    status: StatusPanel | None
    guard: Guard
    receivers: bool  # receiver modules were loaded: a group's letters can be redriven here


def build(settings: ConsoleSettings, receivers: bool = False) -> Console:
    registry = settings.registry()
    status = status_panel()
    index = EventIndex(
        settings, EventDeserializer(SchemaRegistryClient(registry)), settings.console_index_interval_seconds,
        after_refresh=status.refresh if status is not None else None,
    )
    return Console(
        settings, index, RecentEvents(settings, EventDeserializer(SchemaRegistryClient(registry)), index),
        EventDeserializer(SchemaRegistryClient(registry)), status, Guard(settings.console_user, settings.password), receivers,
    )


def create_app(console: Console) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        console.index.start()
        yield
        console.index.stop()
        console.recent.close()

    app = FastAPI(title="espstream console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    guard = console.guard

    @app.middleware("http")
    async def guarded(request: Request, call_next: Callable) -> Response:
        started = time.perf_counter()
        if not guard.authorized(request):
            response: Response = Response("authentication required\n", 401, {"WWW-Authenticate": 'Basic realm="espstream console"'})
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        # The page's own time, for the benchmark and the browser's network panel.
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        session, new = guard.session(request)
        response = TEMPLATES.TemplateResponse(
            request, template,
            {"csrf_field": CSRF_FIELD, "csrf_token": guard.token(session), "index": console.index.state(), **context},
            status_code=status_code,
        )
        if new:
            guard.remember(response, session, secure=request.url.scheme == "https")
        return response

    def check_post(request: Request, token: str) -> None:
        if not guard.post_allowed(request, token):
            raise HTTPException(403, "this form is not from this console session: reload the page and try again")

    @app.exception_handler(KafkaException)
    async def broker_problem(request: Request, error: KafkaException) -> HTMLResponse:
        return page(request, "problem.html", 503, problem=f"the Kafka broker did not answer: {error}")

    @app.exception_handler(StarletteHTTPException)
    async def refused(request: Request, error: StarletteHTTPException) -> HTMLResponse:
        return page(request, "problem.html", error.status_code, problem=str(error.detail))

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/events", 303)

    @app.get("/readyz")
    def ready() -> JSONResponse:
        """200 once the index has read the normalized topic to its end at least once."""
        state = console.index.state()
        return JSONResponse(state, 200 if state["caught_up_at"] else 503)

    @app.get("/events", response_class=HTMLResponse)
    def events(request: Request, esp: str = "", type: str = "", n: int | None = None) -> HTMLResponse:
        settings = console.settings
        per_partition = min(max(n or settings.console_recent_per_partition, 1), settings.console_recent_max_per_partition)
        found = _decoding(lambda: console.recent.newest(per_partition, [esp] if esp else (), [type] if type else ()))
        return page(request, "events.html", events=found, esp=esp, type=type, n=per_partition,
                    esps=ESP_SLUGS, types=sorted(EVENT_TYPES), title="Recent events")

    @app.get("/events/{partition}/{offset}", response_class=HTMLResponse)
    def event(request: Request, partition: int, offset: int) -> HTMLResponse:
        record = _record(console.settings.normalized_topic, partition, offset)
        decoded = _decoding(lambda: console.decode(record.value(), record.topic()))
        body = json.dumps(asdict(decoded), indent=2, ensure_ascii=False, default=str)
        return page(request, "event.html", record=record, event=decoded, body=body, title=f"Event {partition}:{offset}")

    @app.get("/lookup", response_class=HTMLResponse)
    def lookup(request: Request, q: str = "") -> HTMLResponse:
        term = q.strip()
        found = console.index.lookup(term) if term else []
        return page(request, "lookup.html", q=term, messages=_messages(found, console.status),
                    suppressions=_suppressions(found, term, console.status), status_available=console.status is not None,
                    status_problem=console.status.problem if console.status is not None else None,
                    title=f"Lookup {term}" if term else "Lookup")

    @app.get("/dead-letters", response_class=HTMLResponse)
    def dead_letters(request: Request) -> HTMLResponse:
        sources = [letters.normalizer_source(), *map(letters.group_source, letters.groups(console.settings))]
        counts = [(source, letters.pending(console.settings, source, lambda m: None)[1]) for source in sources]
        return page(request, "dead_letters.html", sources=counts, title="Dead letters")

    @app.get("/dead-letters/normalizer", response_class=HTMLResponse)
    def normalizer_letters(request: Request) -> HTMLResponse:
        return _pending(request, letters.normalizer_source())

    @app.get("/dead-letters/groups/{group}", response_class=HTMLResponse)
    def group_letters(request: Request, group: str) -> HTMLResponse:
        return _pending(request, letters.group_source(group))

    def _pending(request: Request, source: letters.Source) -> HTMLResponse:
        esp_of = (lambda m: None) if source.group is None else (lambda m: event_esp(m, console.decode))
        shown, count = _decoding(lambda: letters.pending(console.settings, source, esp_of))
        return page(request, "letters.html", source=source, letters=shown, count=count, shown_max=letters.SHOWN,
                    can_redrive=source.group is None or console.receivers, title=f"Dead letters of {source.title}")

    @app.get("/dead-letters/normalizer/{partition}/{offset}", response_class=HTMLResponse)
    def normalizer_letter(request: Request, partition: int, offset: int) -> HTMLResponse:
        return _letter(request, letters.normalizer_source(), partition, offset)

    @app.get("/dead-letters/groups/{group}/{partition}/{offset}", response_class=HTMLResponse)
    def group_letter(request: Request, group: str, partition: int, offset: int) -> HTMLResponse:
        return _letter(request, letters.group_source(group), partition, offset)

    def _letter(request: Request, source: letters.Source, partition: int, offset: int) -> HTMLResponse:
        record = _record(source.topic, partition, offset)
        decoded = _decoding(lambda: event_text(record, console.decode)) if source.group is not None else None
        return page(request, "letter.html", source=source, text=render_letter(record, decoded), partition=partition,
                    offset=offset, title=f"Dead letter {partition}:{offset} of {source.title}")

    @app.post("/dead-letters/normalizer/redrive", response_class=HTMLResponse)
    def redrive_normalizer(request: Request, csrf_token: str = Form("")) -> HTMLResponse:
        check_post(request, csrf_token)
        return _redrive(request, letters.normalizer_source())

    @app.post("/dead-letters/groups/{group}/redrive", response_class=HTMLResponse)
    def redrive_group(request: Request, group: str, csrf_token: str = Form("")) -> HTMLResponse:
        check_post(request, csrf_token)
        source = letters.group_source(group)
        if not console.receivers:
            raise HTTPException(409, f"this console was started without receiver modules: run {source.cli('redrive')} MODULE")
        return _redrive(request, source)

    @app.post("/dead-letters/normalizer/{partition}/{offset}/discard", response_class=HTMLResponse)
    def discard_normalizer_letter(request: Request, partition: int, offset: int, csrf_token: str = Form(""),
                                  reason: str = Form("")) -> HTMLResponse:
        check_post(request, csrf_token)
        return _discard(request, letters.normalizer_source(), partition, offset, reason)

    @app.post("/dead-letters/groups/{group}/{partition}/{offset}/discard", response_class=HTMLResponse)
    def discard_group_letter(request: Request, group: str, partition: int, offset: int, csrf_token: str = Form(""),
                             reason: str = Form("")) -> HTMLResponse:
        check_post(request, csrf_token)
        return _discard(request, letters.group_source(group), partition, offset, reason)

    def _discard(request: Request, source: letters.Source, partition: int, offset: int, reason: str) -> HTMLResponse:
        from espstream.plumbing.discards import NotPending

        if not reason.strip():
            raise HTTPException(400, "say why the letter will never succeed: the reason is kept with it")
        by = console.settings.console_user if guard.requires_auth else "espstream console"
        try:
            outcomes = letters.discard(console.settings, source, partition, offset, reason.strip(), by)
        except letters.RedriveRunning as error:
            raise HTTPException(409, str(error)) from None
        except NotPending:
            raise HTTPException(409, f"no pending letter at {partition}:{offset} on {source.topic}: redriven or discarded already") from None
        log.info("console: discarded letter %d:%d of %s", partition, offset, source.topic)
        return page(request, "redriven.html", source=source, outcomes=outcomes, title=f"Discard of a letter of {source.title}")

    def _redrive(request: Request, source: letters.Source) -> HTMLResponse:
        try:
            outcomes = _decoding(lambda: letters.redrive(source))
        except letters.RedriveRunning as error:
            raise HTTPException(409, str(error)) from None
        except LookupError as error:  # a group's letter names a receiver no loaded module connects
            raise HTTPException(409, str(error)) from None
        log.info("console: redrove %d letters of %s", len(outcomes), source.topic)
        return page(request, "redriven.html", source=source, outcomes=outcomes, title=f"Redrive of {source.title}")

    @app.get("/rates", response_class=HTMLResponse)
    def rates(request: Request, hours: int = 1) -> HTMLResponse:
        if hours not in HOURS:
            raise HTTPException(404, f"hours is one of {', '.join(map(str, HOURS))}")
        counted = charts.rates(console.index.minutes(since_hours(hours)), hours)
        return page(request, "rates.html", hours=hours, choices=HOURS, rates=counted, table=counted.table(),
                    events_chart=charts.events_chart(counted), unknown_chart=charts.unknown_chart(counted), title="Event rates")

    def _record(topic: str, partition: int, offset: int) -> Message:
        try:
            return read_letter(console.settings.kafka(), topic, partition, offset, timeout=15.0)
        except NoSuchLetter as error:
            raise HTTPException(404, str(error)) from None

    return app


def _decoding(read: Callable[[], Any]) -> Any:
    """``read()``; a schema-registry outage is a 503 page, not a traceback."""
    try:
        return read()
    except Exception as error:
        if registry_unreachable(error):
            raise HTTPException(503, f"the schema registry did not answer: {error}") from None
        raise


@dataclass
class MessageTimeline:
    esp: str
    message_id: str | None
    recipients: list[str]
    events: list[Indexed]
    status: Any  # MessageStatus, when the status view is there


def _messages(found: list[Indexed], status: StatusPanel | None) -> list[MessageTimeline]:
    """The events found, a timeline per (ESP, message id), the most recent message first."""
    timelines: dict[tuple[str, str | None], MessageTimeline] = {}
    for event in found:
        key = (event.esp, event.message_id)
        timeline = timelines.setdefault(key, MessageTimeline(event.esp, event.message_id, [], [], None))
        timeline.events.append(event)
        if event.recipient and event.recipient not in timeline.recipients:
            timeline.recipients.append(event.recipient)
    if status is not None:
        for timeline in timelines.values():
            if timeline.message_id:
                timeline.status = status.status(timeline.esp, timeline.message_id)
    return sorted(timelines.values(), key=lambda t: timeline_order(t.events[-1]), reverse=True)


def _suppressions(found: list[Indexed], term: str, status: StatusPanel | None) -> list[tuple[str, Any]]:
    """Each recipient of what was found (the term itself if it looks like an address), with its suppression or None."""
    if status is None:
        return []
    addresses = {event.recipient.lower(): event.recipient for event in found if event.recipient}
    if "@" in term:
        addresses.setdefault(term.lower(), term)
    return [(address, status.is_suppressed(address)) for address in sorted(addresses.values())]


def serve(settings: ConsoleSettings, receivers: bool = False) -> int:
    import uvicorn

    app = create_app(build(settings, receivers))
    print(f"espstream console on {settings.url}" + (" (basic auth)" if settings.password else ""), flush=True)
    uvicorn.run(app, host=settings.console_host, port=settings.console_port, log_level="warning", access_log=False,
                timeout_keep_alive=5, log_config=None)
    return 0
