"""``espstream export``: the normalized topic's events over a time range, as Avro files by event date.

What is read. ``start`` and ``end`` are Kafka record times: when the normalizer
wrote the event to the topic, not when it happened. In each partition the export
reads from the first record at or after ``start`` up to, not including, the
first record at or after ``end``, or to the partition's end. ``offsets_for_times``
finds the start; records before ``start`` from where it points are skipped, as
some brokers (the embedded one, for records written with an earlier time than
their arrival) point too early.
Consecutive ranges (``A..B``, then ``B..C``) thus read every record exactly
once, whatever the events' own dates: a periodic export job neither misses nor
repeats a record, and finds each range's start without scanning.

Layout. ``OUT/date=YYYY-MM-DD/<topic>-p<partition>-<first>-<last>-schema<id>.avro``:
a directory per event date (the event's ``timestamp`` in UTC, else when the
gateway received the webhook, else ``date=unknown``), in it one file per topic
partition, writer schema and run of offsets (first and last offset of the
records it holds). An event that arrives late for an old date lands in a new
file of that date's directory, named by its own offsets: no export overwrites
the file of an export of another range.

Files. Avro Object Container Files with the records' writer schema (as the
registry has it for their schema id: a file never mixes two) and the deflate
codec, written under a hidden temporary name and renamed once complete, so a
reader never sees half a file. Their bytes depend only on the records read, so
re-running an export writes the same files under the same names. No export
deletes a file: files of earlier exports that overlap the offsets a run read are
left in place and listed in a warning (keep ranges consecutive, or delete the
older files), and a file of the same name holding other records (the topic's
offsets restarted) stops the export rather than being replaced. The exporter
module says why.

Speed. Records are not decoded and re-encoded: a normalized record's value is
the Confluent framing (magic byte, schema id) followed by the event's Avro
binary encoding under that writer schema, and a container block is such
encodings concatenated. Only the event date is read from each record.
"""

from .dates import date_reader
from .exporter import DEFAULT_COMPRESSION_LEVEL, Exporter, ExportError, Summary, UndecodableRecord
from .files import file_name

__all__ = ["DEFAULT_COMPRESSION_LEVEL", "ExportError", "Exporter", "Summary", "UndecodableRecord", "date_reader", "file_name"]
