"""The Kafka plumbing every espstream service shares, below the services and importing none of them.

Settings (config), topics, batch consuming with commits (batches, offsets),
the one bounded topic reader (reader), the one durable producer (producer),
what was written for each raw record (outcomes), dead letters, consumer lag and
metrics serving, log lines, times. Its only espstream import is the contract,
``espstream.schemas``.
"""
