"""An open-loop HTTP load generator: POSTs at a constant rate, whatever the server's latency.

``python -m benchmarks.openloop URL RATE SECONDS FIRST_NUMBER OUT_JSON [CONNECTIONS]``

Request i is due at start + i / RATE and carries webhook body FIRST_NUMBER + i
(benchmarks.payloads.postmark_body: a unique MessageID each). CONNECTIONS
kept-alive connections take the requests in order, each waiting until its
next one is due; when every connection is still waiting for an answer, the
next request goes out late, and its lateness is recorded (wrk2's correction
for coordinated omission: latencies are then taken from the due time).
Requests still unsent LATE_CUTOFF_SECONDS after the end are not sent at all
(their sent time stays 0): a server that cannot keep up does not stretch the
run. It
speaks just enough HTTP/1.1 for the gateway and the bare endpoint, on uvloop.
Writes OUT_JSON: per request its number, due and sent times (time.monotonic(),
one clock for every process on the machine), answer time and status.
"""

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

import uvloop

from .payloads import USER_AGENT, basic_auth_header, postmark_body

DEFAULT_CONNECTIONS = 128
LATE_CUTOFF_SECONDS = 2.0


def request_bytes(host: str, port: int, path: str, number: int) -> bytes:
    body = postmark_body(number)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {USER_AGENT}\r\n"
        f"Content-Type: application/json\r\nAuthorization: {basic_auth_header()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of the next response, and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep_alive = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep_alive = False
    if length:
        await reader.readexactly(length)
    return status, keep_alive


class OpenLoop:
    def __init__(self, url: str, rate: float, seconds: float, first_number: int):
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.rate = rate
        self.seconds = seconds
        self.total = int(rate * seconds)
        self.first_number = first_number
        # Built before the clock starts: the loop only writes bytes.
        self.requests = [request_bytes(self.host, self.port, self.path, first_number + i) for i in range(self.total)]
        self.due = [0.0] * self.total
        self.sent = [0.0] * self.total
        self.answered = [0.0] * self.total
        self.status = [0] * self.total
        self.next_index = 0
        self.start = 0.0

    async def connection(self) -> None:
        reader = writer = None
        cutoff = self.start + self.seconds + LATE_CUTOFF_SECONDS
        while self.next_index < self.total and time.monotonic() < cutoff:
            index = self.next_index
            self.next_index += 1
            due = self.start + index / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                self.due[index], self.sent[index] = due, time.monotonic()
                writer.write(self.requests[index])
                status, keep_alive = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status, keep_alive = -1, False  # a socket error: counted, the connection replaced
            self.answered[index], self.status[index] = time.monotonic(), status
            if not keep_alive and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def run(self, connections: int) -> None:
        self.start = time.monotonic() + 0.1
        await asyncio.gather(*(self.connection() for _ in range(connections)))

    def result(self) -> dict:
        return {
            "rate": self.rate,
            "first_number": self.first_number,
            "start": self.start,
            "due": self.due,
            "sent": self.sent,
            "answered": self.answered,
            "status": self.status,
        }


def main(argv: list[str]) -> int:
    url, rate, seconds, first_number, out = argv[0], float(argv[1]), float(argv[2]), int(argv[3]), argv[4]
    connections = int(argv[5]) if len(argv) > 5 else DEFAULT_CONNECTIONS
    load = OpenLoop(url, rate, seconds, first_number)
    cpu_started = time.process_time()
    uvloop.run(load.run(connections))
    result = load.result()
    result["client_cpu_seconds"] = time.process_time() - cpu_started
    with open(out, "w") as file:
        json.dump(result, file)
    print(json.dumps({"requests": load.total, "client_cpu_seconds": result["client_cpu_seconds"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
