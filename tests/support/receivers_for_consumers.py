"""Receivers `espstream consume tests.support.receivers_for_consumers` loads in tests/integration/test_consumers.py.

Settings by environment: RECEIVED_EVENTS_FILE (one JSON line per call that
returned), RECEIVER_SLEEP_SECONDS (work per event), RECEIVER_BROKEN_FILE (while
it exists, ``record`` raises for the message ids it lists, one per line).
"""

import json
import os
import time

from espstream.consumers import receiver, tracking


def append(receiver_name: str, event, kwargs: dict) -> None:
    line = {
        "receiver": receiver_name,
        "message_id": event.message_id,
        "seq": event.metadata.get("seq"),
        "dedupe_id": kwargs["dedupe_id"],
        "topic": kwargs["topic"],
        "partition": kwargs["partition"],
        "offset": kwargs["offset"],
    }
    # One write per line on an O_APPEND file: lines of parallel lanes never interleave.
    fd = os.open(os.environ["RECEIVED_EVENTS_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


@receiver(tracking)
def record(sender, event, esp_name, **kwargs):
    broken = os.environ.get("RECEIVER_BROKEN_FILE")
    if broken and os.path.exists(broken) and event.message_id in open(broken).read().split():
        raise RuntimeError(f"cannot handle {event.message_id} yet")
    time.sleep(float(os.environ.get("RECEIVER_SLEEP_SECONDS", "0")))
    append("record", event, kwargs)


@receiver(tracking)
def audit(sender, event, esp_name, **kwargs):
    append("audit", event, kwargs)
