"""``espstream consume --django-settings``: every event to django-anymail's own tracking signal.

An existing Django project's ``@receiver(anymail.signals.tracking)`` functions run
unchanged: they get a real ``AnymailTrackingEvent``, ``esp_name``, and as
``sender`` the anymail tracking webhook view class of the event's ESP, as
anymail's view sends them. ``topic``, ``partition``, ``offset`` and
``dedupe_id`` come along as extra keyword arguments (Django receivers take
``**kwargs``).

To the runner the Django receivers are one receiver, ``send_to_anymail``: an
exception propagates (Django's ``send``, as anymail uses it), so the runner
retries the event and finally dead-letters it, and a retry calls the Django
receivers again from the first, as an ESP's retry of a failed webhook would.
"""

import importlib
import os
from functools import cache
from typing import Any

from espstream.schemas import TrackingEvent
from espstream.schemas.esps import ANYMAIL_VIEWS, ESP_NAMES

from .signals import Signal, tracking

# anymail's esp_name -> URL slug, for an event without provenance.
_SLUGS = {name: slug for slug, name in ESP_NAMES.items()}

# Slugs whose anymail view hands receivers the form post (a QueryDict) as esp_event:
# Mailgun's legacy webhooks. Their JSON webhooks always carry an "event-data" object.
_FORM_ESP_EVENTS = frozenset({"mailgun"})


class DjangoUnavailable(RuntimeError):
    """Django or django-anymail is not installed."""


def setup(settings_module: str, signal: Signal = tracking) -> None:
    """Configure Django from ``settings_module`` and forward ``signal``'s events to anymail's."""
    try:
        import anymail.signals  # noqa: F401 - fail here, not on the first event
        import django
    except ImportError as error:
        raise DjangoUnavailable(f"{error.name} is not installed: pip install 'espstream[django]'") from error
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    django.setup()
    signal.connect(send_to_anymail)


def send_to_anymail(sender: object, event: TrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """Send ``event`` on ``anymail.signals.tracking``, as anymail's webhook view would."""
    from anymail.signals import tracking as anymail_tracking
    from django.db import close_old_connections

    # What Django does around each request: drop connections that broke or outlived CONN_MAX_AGE.
    close_old_connections()
    try:
        anymail_tracking.send(sender=anymail_view(event), event=to_anymail_event(event), esp_name=esp_name, **kwargs)
    finally:
        close_old_connections()


def to_anymail_event(event: TrackingEvent) -> Any:
    """The ``AnymailTrackingEvent`` anymail's view would have sent for ``event``."""
    from anymail.signals import AnymailTrackingEvent

    return AnymailTrackingEvent(
        event_type=event.event_type,
        timestamp=event.timestamp,
        event_id=event.event_id,
        esp_event=_anymail_esp_event(_slug(event), event.esp_event),
        click_url=event.click_url,
        description=event.description,
        message_id=event.message_id,
        metadata=event.metadata,
        mta_response=event.mta_response,
        recipient=event.recipient,
        reject_reason=event.reject_reason,
        tags=event.tags,
        user_agent=event.user_agent,
    )


def anymail_view(event: TrackingEvent) -> type:
    """anymail's tracking webhook view class for the event's ESP."""
    return _view_class(_slug(event))


def _slug(event: TrackingEvent) -> str:
    if event.provenance is not None:
        return event.provenance.esp
    try:
        return _SLUGS[event.esp_name]
    except KeyError:
        raise LookupError(f"no anymail webhook view for ESP {event.esp_name!r}") from None


@cache
def _view_class(slug: str) -> type:
    try:
        module_name, class_name = ANYMAIL_VIEWS[slug].rsplit(".", 1)
    except KeyError:
        raise LookupError(f"no anymail webhook view for ESP slug {slug!r}") from None
    return getattr(importlib.import_module(module_name), class_name)


def _anymail_esp_event(slug: str, esp_event: Any) -> Any:
    """A legacy form post back as the QueryDict anymail passes; anything else as is."""
    if slug in _FORM_ESP_EVENTS and _is_form(esp_event):
        from django.http import QueryDict

        form = QueryDict(mutable=True)
        for field, values in esp_event.items():
            form.setlist(field, values)
        form._mutable = False  # request.POST is read-only; Django sets the flag the same way
        return form
    return esp_event


def _is_form(esp_event: Any) -> bool:
    """``{field: [values]}``, the normalized shape of a form post."""
    return isinstance(esp_event, dict) and all(
        isinstance(values, list) and all(isinstance(value, str) for value in values) for values in esp_event.values()
    )
