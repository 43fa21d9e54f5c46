"""Message status and suppressions: `espstream status` keeps them on two compacted topics, StatusView reads them.

``from espstream.consumers.status import StatusView``; the merge rules and the
precedence table are in ``state``.
"""

from .state import PRECEDENCE, SUPPRESSING, Evidence, MessageStatus, Suppression
from .view import StatusView

__all__ = ["PRECEDENCE", "SUPPRESSING", "Evidence", "MessageStatus", "StatusView", "Suppression"]
