"""The end-to-end benchmark's receiver: records when each event arrived.

``espstream consume benchmarks.e2e_receiver --group ...`` with BENCH_ARRIVALS_PATH
set: one line per event, "<message id> <time.monotonic()>", the same clock the
load generator stamps its sends with. A thread flushes the file every 100 ms so
that the harness sees arrivals while the load runs.
"""

import os
import threading
import time

from espstream.consumers import receiver, tracking

_arrivals = open(os.environ["BENCH_ARRIVALS_PATH"], "a", buffering=1 << 20)


@receiver(tracking)
def record_arrival(sender, event, esp_name, **kwargs) -> None:
    _arrivals.write(f"{event.message_id} {time.monotonic()}\n")


def _flush_forever() -> None:
    while True:
        time.sleep(0.1)
        _arrivals.flush()


threading.Thread(target=_flush_forever, name="arrivals-flush", daemon=True).start()
