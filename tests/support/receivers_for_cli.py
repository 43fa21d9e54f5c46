"""Receivers `espstream consume tests.support.receivers_for_cli` loads in the CLI test."""

import json
import os

from espstream.consumers import receiver, tracking


@receiver(tracking)
def append_to_file(sender, event, esp_name, **kwargs):
    with open(os.environ["RECEIVED_EVENTS_FILE"], "a") as out:
        out.write(json.dumps({"message_id": event.message_id, "event_type": event.event_type, "esp_name": esp_name}) + "\n")
