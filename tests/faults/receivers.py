"""Receivers the fault scenarios run with `espstream consume tests.faults.receivers`.

Each call appends the event's dedupe id to ``FAULTS_RECEIVED_FILE`` as it starts, so a
process killed mid-call has still recorded that the event reached it. Optional:
``FAULTS_RECEIVER_DELAY`` (seconds per event) makes a slow receiver;
``FAULTS_STALL_MESSAGE_ID`` makes the receiver hang on that message's event the
first time (it creates ``FAULTS_STALL_FLAG`` then), so a kill lands mid-batch.
"""

import os
import time
from pathlib import Path

from espstream.consumers import receiver, tracking


@receiver(tracking)
def record_dedupe_id(sender, event, esp_name, **kwargs):
    with open(os.environ["FAULTS_RECEIVED_FILE"], "a") as out:
        out.write(event.dedupe_id + "\n")
    stall = os.environ.get("FAULTS_STALL_MESSAGE_ID")
    if stall and event.message_id == stall:
        flag = Path(os.environ["FAULTS_STALL_FLAG"])
        if not flag.exists():
            flag.touch()
            time.sleep(3600)  # until killed
    time.sleep(float(os.environ.get("FAULTS_RECEIVER_DELAY", "0")))
