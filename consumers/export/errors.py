"""Why an export stops."""


class ExportError(Exception):
    """The export cannot go on: the message says why."""


class UndecodableRecord(ExportError):
    """A record that is not an event the registry's schemas describe."""

    def __init__(self, topic: str, partition: int, offset: int, reason: str):
        super().__init__(f"{topic} partition {partition} offset {offset}: {reason}")
        self.partition = partition
        self.offset = offset
