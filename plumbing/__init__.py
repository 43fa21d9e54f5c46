"""The Kafka plumbing every espstream service shares, below the services and importing none of them.

Settings (config), topics, batch consuming with commits (batches, offsets),
dead letters, consumer lag and metrics serving, log lines, times. Its only
espstream import is the contract, ``espstream.schemas``.
"""
