"""An async receiver `espstream consume tests.support.receivers_async --concurrency 8` loads in tests/integration/test_consumers.py.

Each line records one call: the event's message id and sequence number, and how
many calls were running at once when it started (RECEIVED_EVENTS_FILE).
"""

import asyncio
import json
import os
import random

from espstream.consumers import receiver, tracking

running = 0


@receiver(tracking)
async def record_in_order(sender, event, esp_name, **kwargs):
    global running  # only touched on the one event loop every async receiver shares
    running += 1
    try:
        started_with = running
        await asyncio.sleep(random.uniform(0, 0.01))
        with open(os.environ["RECEIVED_EVENTS_FILE"], "a") as out:
            out.write(json.dumps({"message_id": event.message_id, "seq": event.metadata["seq"], "running": started_with}) + "\n")
    finally:
        running -= 1
