"""`espstream export`: the normalized topic's events as Avro files by event date, read back as a user would."""

import dataclasses
import io
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from espstream import __version__
from espstream.consumers.export import Exporter, ExportError, Summary, UndecodableRecord, date_reader
from espstream.embedded import EmbeddedBroker
from espstream.normalizer import normalize
from espstream.normalizer.records import event_key
from espstream.plumbing.times import parse_time
from espstream.schemas import Provenance, TrackingEvent
from espstream.schemas.avro import EventDeserializer, EventSerializer, event_to_record, record_to_event, schema_str
from espstream.schemas.esps import ESP_NAMES
from tests.conftest import settings_from_env
from tests.support.normalized import fresh_settings
from tests.support.parity.fixtures import fixtures_for
from tests.support.services import read_topic

RECEIVED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# The README's pandas example, exactly as written there.
README_PANDAS = """\
import glob, fastavro, pandas as pd
paths = sorted(glob.glob("export/date=*/*.avro"))
df = pd.DataFrame.from_records([event for path in paths for event in fastavro.reader(open(path, "rb"))])
"""


def fixture_events() -> list[TrackingEvent]:
    """Every event the normalizer makes of the webhook fixtures, each with its provenance.

    Every third webhook gets no received-at (as a raw record without that header):
    its events without a timestamp have no date at all.
    """
    events = []
    for slug in ESP_NAMES:
        for number, fixture in enumerate(fixtures_for(slug)):
            if fixture.departure is not None and fixture.departure.error is not None:
                continue
            try:
                normalized = normalize(slug, fixture.body, fixture.content_type, fixture.headers)
            except Exception:  # dead-lettered by the normalizer: not on the normalized topic
                continue
            for index, event in enumerate(normalized):
                event.provenance = Provenance(
                    esp=slug, topic="tracking.raw", partition=0, offset=len(events), index=index,
                    received_at=None if number % 3 == 0 else RECEIVED_AT, request_id=uuid.uuid4().hex,
                    normalizer_version=__version__,
                )
                events.append(event)
    return events


def expected_date(event: TrackingEvent) -> str:
    moment = event.timestamp or (event.provenance.received_at if event.provenance else None)
    return moment.astimezone(UTC).date().isoformat() if moment else "unknown"


def produce(env: dict[str, str], events: list[TrackingEvent], record_time: datetime | None = None,
            step: timedelta = timedelta(seconds=1)) -> None:
    """The events, encoded as the normalizer does, keyed as it does; record times from ``record_time`` if given."""
    values = produce_values_of(env, events)
    produce_values(env, [(event_key(event), value) for event, value in zip(events, values)], record_time, step)


def produce_values_of(env: dict[str, str], events: list[TrackingEvent]) -> list[bytes]:
    """The record values the normalizer would write for ``events``."""
    registry = SchemaRegistryClient({"url": env["ESPSTREAM_SCHEMA_REGISTRY_URL"]})
    serialize = EventSerializer(registry, env["ESPSTREAM_NORMALIZED_TOPIC"])
    return [serialize(event) for event in events]


def produce_values(env: dict[str, str], values: list[tuple[bytes | None, bytes]], record_time: datetime | None = None,
                   step: timedelta = timedelta(seconds=1)) -> None:
    producer = Producer({"bootstrap.servers": env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], "enable.idempotence": True})
    for number, (key, value) in enumerate(values):
        options = {}
        if record_time is not None:
            options["timestamp"] = int((record_time + step * number).timestamp() * 1000)
        producer.produce(env["ESPSTREAM_NORMALIZED_TOPIC"], value, key=key, **options)
    assert producer.flush(30) == 0


def topic_events(env: dict[str, str]) -> list[tuple[int, int, TrackingEvent]]:
    """(partition, offset, event) of every record on the normalized topic, decoded by the registry."""
    decode = EventDeserializer(SchemaRegistryClient({"url": env["ESPSTREAM_SCHEMA_REGISTRY_URL"]}))
    topic = env["ESPSTREAM_NORMALIZED_TOPIC"]
    records = read_topic(env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], topic)
    return [(m.partition(), m.offset(), decode(m.value(), topic)) for m in records]


def avro_files(out: Path) -> list[Path]:
    return sorted(out.glob("date=*/*.avro"))


def file_events(path: Path) -> list[TrackingEvent]:
    with open(path, "rb") as file:
        return [record_to_event(record) for record in fastavro.reader(file)]


def exported(out: Path) -> list[TrackingEvent]:
    return [event for path in avro_files(out) for event in file_events(path)]


def export(env: dict[str, str], out: Path, **options) -> Summary:
    return Exporter(settings_from_env(env), out, **options).run()


def export_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "espstream", "export", *args], env={**os.environ, **env},
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def env(broker: EmbeddedBroker, registry_url: str) -> dict[str, str]:
    return fresh_settings(broker.bootstrap_servers, registry_url, partitions=1)


def test_every_event_comes_back_field_for_field_in_its_date_directory(
    broker: EmbeddedBroker, registry_url: str, tmp_path: Path
) -> None:
    env = fresh_settings(broker.bootstrap_servers, registry_url, partitions=3)
    events = fixture_events()
    produce(env, events)
    on_topic = topic_events(env)
    assert len(on_topic) == len(events)
    out = tmp_path / "export"

    summary = export(env, out)

    by_dedupe_id = {event.dedupe_id: event for _, _, event in on_topic}
    assert len(by_dedupe_id) == len(on_topic)
    read_back = exported(out)
    assert len(read_back) == len(on_topic)
    for event in read_back:
        assert event == by_dedupe_id[event.dedupe_id]
    # Several dates, events without a timestamp by received-at, and some with no date at all.
    dates = Counter(expected_date(event) for _, _, event in on_topic)
    assert len(dates) > 20 and dates["unknown"] > 0
    assert any(e.timestamp is None and e.provenance.received_at for _, _, e in on_topic)
    assert {path.parent.name for path in avro_files(out)} == {f"date={d}" for d in dates}
    # Each file: one date, one partition, named by the first and last offsets of its records.
    topic = env["ESPSTREAM_NORMALIZED_TOPIC"]
    schema_id = int.from_bytes(read_topic(broker.bootstrap_servers, topic)[0].value()[1:5], "big")
    expected_names = {}
    for partition, offset, event in sorted(on_topic, key=lambda item: item[:2]):
        key = (expected_date(event), partition)
        first, _last = expected_names.get(key, (offset, offset))
        expected_names[key] = (first, offset)
    assert {(path.parent.name, path.name) for path in avro_files(out)} == {
        (f"date={day}", f"{topic}-p{partition}-{first}-{last}-schema{schema_id}.avro")
        for (day, partition), (first, last) in expected_names.items()
    }
    for path in avro_files(out):
        assert {expected_date(event) for event in file_events(path)} == {path.parent.name.removeprefix("date=")}
    # The summary counts what is on disk.
    assert summary.events == len(events)
    assert len(summary.files) == len(avro_files(out))
    assert summary.bytes == sum(path.stat().st_size for path in avro_files(out))
    assert {day: totals.events for day, totals in summary.dates.items()} == dict(dates)
    # Nothing but the files: no temporary file left behind.
    assert sorted(p for p in out.rglob("*") if p.is_file()) == avro_files(out)


def test_files_embed_the_writer_schema_and_use_deflate(env: dict[str, str], tmp_path: Path) -> None:
    produce(env, fixture_events()[:5])
    export(env, tmp_path)

    registry = SchemaRegistryClient({"url": env["ESPSTREAM_SCHEMA_REGISTRY_URL"]})
    read = 0
    for path in avro_files(tmp_path):
        schema_id = int(path.name.removesuffix(".avro").rsplit("schema", 1)[1])
        with open(path, "rb") as file:
            reader = fastavro.reader(file)
            assert reader.codec == "deflate"
            assert json.loads(reader.metadata["avro.schema"]) == json.loads(registry.get_schema(schema_id).schema_str)
            assert reader.metadata["espstream.topic"] == env["ESPSTREAM_NORMALIZED_TOPIC"]
            assert reader.metadata["espstream.schema_id"] == str(schema_id)
            read += len(list(reader))
    assert read == 5


def test_the_time_range_selects_by_record_time_and_late_events_get_new_files(env: dict[str, str], tmp_path: Path) -> None:
    events = [e for e in fixture_events() if e.timestamp is not None][:12]
    first, second, third = events[:4], events[4:8], events[8:]
    # A late event: in the second range, for the date of an event of the first.
    second[0] = dataclasses.replace(second[0], timestamp=first[0].timestamp, dedupe_id="late-" + second[0].dedupe_id)
    ten = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    eleven, noon = ten + timedelta(hours=1), ten + timedelta(hours=2)
    produce(env, first, ten)      # 10:00:00 .. 10:00:03
    produce(env, second, eleven)  # 11:00:00 (exactly --to of the first range) .. 11:00:03
    produce(env, third, noon)
    out = tmp_path / "export"

    one = export_cli(env, "--from", "2026-11-23T10:00:00Z", "--to", "2026-11-23T11:00:00+00:00", "--out", str(out))
    assert one.returncode == 0, one.stderr
    assert sorted(e.dedupe_id for e in exported(out)) == sorted(e.dedupe_id for e in first)
    assert one.stdout.startswith(f"exported 4 events of {env['ESPSTREAM_NORMALIZED_TOPIC']}")
    for day, count in Counter(expected_date(e) for e in first).items():
        assert f"date={day}  {count} events" in one.stdout
    files_of_first = set(avro_files(out))

    two = export_cli(env, "--from", "2026-11-23T11:00", "--to", "2026-11-23T12:00", "--out", str(out))
    assert two.returncode == 0, two.stderr
    assert set(avro_files(out)) >= files_of_first  # the earlier files are untouched
    new_files = set(avro_files(out)) - files_of_first
    assert sorted(e.dedupe_id for path in new_files for e in file_events(path)) == sorted(e.dedupe_id for e in second)
    late_date = f"date={expected_date(first[0])}"
    assert [p.parent.name for p in files_of_first if p.parent.name == late_date] == [late_date]
    assert [p.parent.name for p in new_files if p.parent.name == late_date] == [late_date]  # a second file there

    # The same range again: the same files, byte for byte, and no more.
    contents = {path: path.read_bytes() for path in avro_files(out)}
    again = export_cli(env, "--from", "2026-11-23T11:00", "--to", "2026-11-23T12:00", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert {path: path.read_bytes() for path in avro_files(out)} == contents

    # A range holding both: the earlier files stay as they were, those it did not rewrite listed in a warning.
    everything = export(env, out, start=ten, end=noon + timedelta(hours=1))
    ours = {w.path for w in everything.files}
    assert sorted(e.dedupe_id for path in ours for e in file_events(path)) == sorted(
        e.dedupe_id for e in first + second + third)
    assert {path: path.read_bytes() for path in contents} == contents
    assert everything.overlapping and everything.overlapping == sorted(set(contents) - ours)
    report = "\n".join(everything.lines())
    assert "keep ranges consecutive, or delete the older files" in report
    assert all(f"  {path}" in report for path in everything.overlapping)
    # Deleting the older files, as the warning says, leaves every event once.
    for path in everything.overlapping:
        path.unlink()
    assert sorted(e.dedupe_id for e in exported(out)) == sorted(e.dedupe_id for e in first + second + third)


def test_without_to_it_reads_to_the_end_of_each_partition(
    broker: EmbeddedBroker, registry_url: str, tmp_path: Path
) -> None:
    env = fresh_settings(broker.bootstrap_servers, registry_url, partitions=2)
    events = fixture_events()[:40]
    produce(env, events)  # one batch: the broker's high watermark stops short of its end

    summary = export(env, tmp_path, start=datetime.now(UTC) - timedelta(hours=1))

    assert summary.events == 40
    assert sorted(e.dedupe_id for e in exported(tmp_path)) == sorted(e.dedupe_id for e in events)


def test_a_record_the_registry_cannot_decode_stops_the_export(env: dict[str, str], tmp_path: Path) -> None:
    events = fixture_events()[:3]
    produce(env, events[:1])
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(json.loads(schema_str())), event_to_record(events[1]))
    unknown_id = b"\0" + (2**31 - 7).to_bytes(4, "big")
    produce_values(env, [(None, b"not avro at all"), (None, unknown_id + body.getvalue())])
    produce(env, events[2:])
    out = tmp_path / "export"

    stopped = export_cli(env, "--out", str(out))

    assert stopped.returncode == 1
    assert f"{env['ESPSTREAM_NORMALIZED_TOPIC']} partition 0 offset 1: ValueError: not Confluent-framed Avro" in stopped.stderr
    assert not out.exists() or [p for p in out.rglob("*") if p.is_file()] == []  # nothing half-written

    with pytest.raises(UndecodableRecord) as raised:
        export(env, out, start=datetime.now(UTC) - timedelta(hours=1))
    assert raised.value.offset == 1

    skipped = export_cli(env, "--out", str(out), "--skip-undecodable")
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 2 undecodable records" in skipped.stdout
    assert "offset 2: ValueError: schema id 2147483641 is unknown to the registry" in skipped.stderr
    assert sorted(e.dedupe_id for e in exported(out)) == sorted([events[0].dedupe_id, events[2].dedupe_id])


def test_verify_decodes_each_record_whole(env: dict[str, str], tmp_path: Path) -> None:
    events = fixture_events()[:4]
    produce(env, events[:3])
    fast = export(env, tmp_path / "fast")
    verified = export(env, tmp_path / "verified", verify=True)
    assert verified.events == fast.events == 3
    assert [w.path.read_bytes() for w in verified.files] == [w.path.read_bytes() for w in fast.files]

    # A registered schema id, its date readable, but the rest cut short.
    [cut_short] = produce_values_of(env, events[3:])
    produce_values(env, [(None, cut_short[:-20])])
    with pytest.raises(UndecodableRecord) as raised:
        export(env, tmp_path / "broken", verify=True)
    assert raised.value.offset == 3


def test_a_skipped_record_does_not_remove_the_earlier_file_that_holds_it(env: dict[str, str], tmp_path: Path) -> None:
    events = [e for e in fixture_events() if e.timestamp is not None][:3]
    for event in events:
        event.timestamp = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    produce(env, events[:2])
    # Its date readable, the rest cut short: exported without --verify, undecodable with it.
    [cut_short] = produce_values_of(env, events[2:])
    produce_values(env, [(None, cut_short[:-20])])
    out = tmp_path / "export"
    [earlier] = [w.path for w in export(env, out).files]
    assert earlier.name.endswith("-p0-0-2-schema" + earlier.name.rsplit("schema", 1)[1])
    content = earlier.read_bytes()

    skipping = export(env, out, verify=True, skip_undecodable=True)

    assert len(skipping.skipped) == 1 and skipping.events == 2
    assert earlier.read_bytes() == content  # the undecodable record is still in the file of the first export
    assert skipping.overlapping == [earlier]
    assert set(avro_files(out)) == {earlier, *(w.path for w in skipping.files)}


def test_a_file_of_the_same_name_with_other_records_is_never_replaced(
    broker: EmbeddedBroker, registry_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    events = [e for e in fixture_events() if e.timestamp is not None][:4]
    for event in events:
        event.timestamp = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    produce(env, events[:2])
    out = tmp_path / "export"
    [ours] = [w.path for w in export(env, out).files]
    # The same records at another compression level are the same file's records: rewritten.
    assert [w.path for w in export(env, out, compression_level=9).files] == [ours]
    assert file_events(ours) == events[:2]
    # What an export made before the topic's offsets restarted: other records at the same offsets.
    before = fresh_settings(broker.bootstrap_servers, registry_url, partitions=1)
    produce(before, events[2:])
    [theirs] = [w.path for w in export(before, tmp_path / "before").files]
    ours.write_bytes(theirs.read_bytes())

    with pytest.raises(ExportError, match="holds other records than offsets 0-1 .* it was left as it is"):
        export(env, out)

    assert avro_files(out) == [ours] and ours.read_bytes() == theirs.read_bytes()
    assert [p for p in out.rglob("*") if p.is_file()] == [ours]  # no temporary file left behind


def test_events_of_another_writer_schema_go_to_files_of_their_own(env: dict[str, str], tmp_path: Path) -> None:
    events = [e for e in fixture_events() if e.timestamp is not None][:4]
    for event in events:
        event.timestamp = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    produce(env, events[:2])
    # A later schema version: one more optional field, registered under the topic's subject.
    topic = env["ESPSTREAM_NORMALIZED_TOPIC"]
    newer = json.loads(schema_str())
    newer["fields"].append({"name": "campaign", "type": ["null", "string"], "default": None})
    registry = SchemaRegistryClient({"url": env["ESPSTREAM_SCHEMA_REGISTRY_URL"]})
    newer_id = registry.register_schema(f"{topic}-value", Schema(json.dumps(newer), "AVRO"))
    values = []
    for event in events[2:]:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, fastavro.parse_schema(newer), {**event_to_record(event), "campaign": "spring"})
        values.append((event_key(event), b"\0" + newer_id.to_bytes(4, "big") + body.getvalue()))
    produce_values(env, values)
    produce(env, events[:1])  # the first schema again, after the newer one

    export(env, tmp_path)

    files = avro_files(tmp_path)
    assert {p.parent.name for p in files} == {"date=2026-11-23"}
    by_schema: dict[int, list[dict]] = {}
    for path in files:
        with open(path, "rb") as file:
            reader = fastavro.reader(file)
            schema_id = int(reader.metadata["espstream.schema_id"])
            assert json.loads(reader.metadata["avro.schema"]) == json.loads(registry.get_schema(schema_id).schema_str)
            by_schema.setdefault(schema_id, []).extend(reader)
    # Offsets 0, 1 and 4 in a file of the first schema, 2-3 in one of the newer.
    assert sorted(p.name.split("-p0-")[1] for p in files) == [f"0-4-schema{min(by_schema)}.avro", f"2-3-schema{newer_id}.avro"]
    assert [r["campaign"] for r in by_schema[newer_id]] == ["spring", "spring"]
    assert [r["dedupe_id"] for r in by_schema[newer_id]] == [e.dedupe_id for e in events[2:]]
    older = [record_to_event(r) for schema_id, records in by_schema.items() if schema_id != newer_id for r in records]
    assert sorted(e.dedupe_id for e in older) == sorted(e.dedupe_id for e in events[:2] + events[:1])


def test_the_readme_pandas_example(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = fixture_events()[:30]
    produce(env, events)
    export(env, tmp_path / "export")
    monkeypatch.chdir(tmp_path)

    namespace: dict = {}
    exec(README_PANDAS, namespace)

    df = namespace["df"]
    assert len(df) == 30
    assert list(df.columns) == [field["name"] for field in json.loads(schema_str())["fields"]]
    assert sorted(df["dedupe_id"]) == sorted(e.dedupe_id for e in events)
    assert set(df["esp_name"]) == {e.esp_name for e in events}
    assert str(df["timestamp"].dtype).startswith("datetime64") and str(df["timestamp"].dt.tz) == "UTC"
    assert df.loc[df["dedupe_id"] == events[0].dedupe_id, "timestamp"].item() == events[0].timestamp


@pytest.mark.parametrize("moved", [None, "metadata"])
def test_the_date_read_from_the_bytes_is_the_decoded_events(moved: str | None) -> None:
    """The date taken from a record's bytes equals that of its fully decoded event, also when fields move."""
    schema = json.loads(schema_str())
    if moved is not None:  # a field the fast path cannot step over, before the timestamp
        field = next(f for f in schema["fields"] if f["name"] == moved)
        schema["fields"].remove(field)
        schema["fields"].insert(0, field)
    parsed = fastavro.parse_schema(schema)
    date_of = date_reader(schema)
    events = fixture_events()
    for event in events:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed, event_to_record(event))
        assert date_of(b"\0\0\0\0\1" + body.getvalue()) == expected_date(event), event
    with pytest.raises((ValueError, IndexError, EOFError)):
        date_of(b"\0\0\0\0\1" + body.getvalue()[:3])


def test_times_are_iso_8601_and_utc_unless_zoned() -> None:
    assert parse_time("2026-11-23") == datetime(2026, 11, 23, tzinfo=UTC)
    assert parse_time("2026-11-23T10:30") == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    assert parse_time("2026-11-23T10:30:00+02:00") == datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_time("yesterday")


def _plain(value: object) -> object:
    """A value pandas read from Parquet as the plain Python fastavro gives: lists, dicts, datetimes, None."""
    import numpy
    import pandas as pd

    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, numpy.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def test_parquet_and_jsonl_files_hold_the_avro_exports_events_in_the_same_layout(env: dict[str, str], tmp_path: Path) -> None:
    import pandas as pd

    events = fixture_events()
    produce(env, events)
    for file_format in ("avro", "parquet", "jsonl"):
        done = export_cli(env, "--out", str(tmp_path / file_format), "--format", file_format, "--to", "2100-01-01T00:00:00Z")
        assert done.returncode == 0, done.stderr
        assert f"exported {len(events)} events" in done.stdout

    avro_names = {path.relative_to(tmp_path / "avro").with_suffix("") for path in avro_files(tmp_path / "avro")}
    parquet_files = sorted((tmp_path / "parquet").glob("date=*/*.parquet"))
    assert {path.relative_to(tmp_path / "parquet").with_suffix("") for path in parquet_files} == avro_names
    assert {path.relative_to(tmp_path / "jsonl").with_suffix("") for path in (tmp_path / "jsonl").glob("date=*/*.jsonl")} == avro_names

    # The Avro export's records, as fastavro reads them; metadata values as JSON values.
    def comparable(record: dict) -> dict:
        metadata = {k: json.loads(v["json"]) if isinstance(v, dict) else v for k, v in record["metadata"].items()}
        return {**record, "metadata": metadata}

    expected = {}
    for path in avro_files(tmp_path / "avro"):
        with open(path, "rb") as file:
            for record in fastavro.reader(file):
                expected[record["dedupe_id"]] = (path.parent.name, comparable(record))

    # Parquet, read with pandas (pyarrow): the whole directory, its date=... directories as a column.
    frame = pd.read_parquet(tmp_path / "parquet")
    assert len(frame) == len(events)
    for row in frame.to_dict("records"):
        directory, record = expected[row["dedupe_id"]]
        assert f"date={row.pop('date')}" == directory
        read = {name: _plain(value) for name, value in row.items()}
        read["metadata"] = {key: None if text is None else json.loads(text) for key, text in read["metadata"] or []}
        assert read == record

    # JSON lines: one event per line, times as ISO 8601.
    lines = [json.loads(line) for path in (tmp_path / "jsonl").glob("date=*/*.jsonl") for line in path.read_text().splitlines()]
    assert len(lines) == len(events)
    for line in lines:
        _directory, record = expected[line["dedupe_id"]]
        assert line["event_type"] == record["event_type"] and line["tags"] == record["tags"]
        assert line["timestamp"] == (record["timestamp"].isoformat() if record["timestamp"] else None)

    # Running the same range again writes the same files, byte for byte.
    before = {path: path.read_bytes() for path in parquet_files}
    again = export_cli(env, "--out", str(tmp_path / "parquet"), "--format", "parquet", "--to", "2100-01-01T00:00:00Z")
    assert again.returncode == 0, again.stderr
    assert "warning" not in again.stdout
    assert {path: path.read_bytes() for path in sorted((tmp_path / "parquet").glob("date=*/*.parquet"))} == before
    assert sorted(p for p in (tmp_path / "parquet").rglob("*") if p.is_file()) == parquet_files
