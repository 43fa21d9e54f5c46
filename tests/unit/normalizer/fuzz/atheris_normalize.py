"""Coverage-guided fuzzing of one ESP parser with atheris (libFuzzer): ``make fuzz``.

    python -m tests.unit.normalizer.fuzz.atheris_normalize SLUG [libFuzzer options, e.g. -max_total_time=20]

The corpus starts from the ESP's fixtures (tests/fixtures/SLUG/). Each input is
split into a content type and a body; the property is the test suite's
(tests/support/fuzz/harness.py): Avro-encodable events or a NormalizeError, within the
deadline. Anything else is a crash, and libFuzzer writes the input to
``crash-*`` for a reproducer. Not collected by pytest (no ``test_`` prefix).
"""

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import espstream.normalizer.esps
    import espstream.normalizer.fields
    import espstream.normalizer.request
    import espstream.normalizer.timestamps
    import espstream.schemas.webhook_body

from tests.support.fuzz.harness import check
from tests.support.fuzz.strategies import render, seed_specs

# An input is CONTENT_TYPE SEPARATOR BODY; without the separator, it is all body (JSON).
SEPARATOR = b"\n\x00\n"


def corpus(slug: str) -> Path:
    """A directory holding each fixture of ``slug`` as an input."""
    directory = Path(tempfile.mkdtemp(prefix=f"espstream-fuzz-{slug}-"))
    for index, spec in enumerate(seed_specs(slug)):
        request = render(spec)
        content_type = (request.content_type or "").encode()
        (directory / f"fixture-{index}").write_bytes(content_type + SEPARATOR + request.body)
    return directory


def one_input(slug: str, data: bytes) -> None:
    content_type, separator, body = data.partition(SEPARATOR)
    if not separator:
        content_type, body = b"application/json", data
    check(slug, body, content_type.decode("latin-1") or None)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in espstream.normalizer.esps.PARSERS:
        sys.exit(f"usage: {sys.argv[0]} SLUG [libFuzzer options]; SLUG one of {' '.join(sorted(espstream.normalizer.esps.PARSERS))}")
    slug = sys.argv[1]
    options = sys.argv[2:]
    # Given input files (a crash to replay), run those alone; else fuzz from the fixtures.
    replaying = any(not option.startswith("-") for option in options)
    seeds = [] if replaying else [str(corpus(slug))]
    atheris.Setup([sys.argv[0], *options, *seeds], lambda data: one_input(slug, data))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
