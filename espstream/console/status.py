"""The status and suppression panel's source: ``espstream.consumers.status.StatusView`` where it is installed.

The console works without it (the timeline comes from the normalized topic
alone); with it, a lookup also shows each message's current status and each
recipient's suppression. ``status_panel()`` is the one switch. The view is made
at the first refresh that succeeds: its topics may not exist yet when the
console starts.
"""

import importlib
import logging
from typing import Any

log = logging.getLogger("espstream.console")


class StatusPanel:
    def __init__(self, view_class: Any):
        self._view_class = view_class
        self._view: Any = None
        self.problem: str | None = None

    def refresh(self) -> None:
        try:
            if self._view is None:
                self._view = self._view_class(None)  # reads the settings from the environment, as the console does
            else:
                self._view.refresh()
        except Exception as error:
            if self.problem is None:
                log.warning("console: message statuses cannot be read yet: %s", error)
            self.problem = f"message statuses cannot be read: {error}"
        else:
            self.problem = None

    def status(self, esp: str, message_id: str) -> Any:
        """The MessageStatus, or None (unknown message, or no view yet)."""
        return self._view.status(esp, message_id) if self._view is not None else None

    def is_suppressed(self, address: str) -> Any:
        """The Suppression, or None."""
        return self._view.is_suppressed(address) if self._view is not None else None


def status_panel() -> StatusPanel | None:
    """A panel on StatusView, or None when espstream.consumers.status is not there (yet)."""
    try:
        module = importlib.import_module("espstream.consumers.status")
    except ModuleNotFoundError as error:
        if error.name != "espstream.consumers.status":
            raise
        return None
    view_class = getattr(module, "StatusView", None)
    return StatusPanel(view_class) if view_class is not None else None
