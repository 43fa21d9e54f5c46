"""Every ESP parser under random and mutated requests: Avro-encodable events or a NormalizeError, in time.

The committed run is small and derandomized, so CI is deterministic and quick.
Hunt locally with ``ESPSTREAM_FUZZ_EXAMPLES=5000`` (examples per test and ESP;
``ESPSTREAM_FUZZ_RANDOM=1`` for fresh examples each run), or coverage-guided
with ``make fuzz`` (tests/unit/normalizer/fuzz/atheris_normalize.py).
"""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from espstream.normalizer.esps import PARSERS
from tests.support.fuzz.harness import check
from tests.support.fuzz.strategies import Request, mutated_requests, random_requests

SLUGS = sorted(PARSERS)
_EXAMPLES = os.environ.get("ESPSTREAM_FUZZ_EXAMPLES")
DERANDOMIZE = os.environ.get("ESPSTREAM_FUZZ_RANDOM", "") == ""


def fuzz_settings(default_examples: int) -> settings:
    return settings(
        max_examples=int(_EXAMPLES) if _EXAMPLES else default_examples,
        deadline=None,  # the harness's own deadline detects hangs; hypothesis's would flag slow machines
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


@pytest.mark.parametrize("slug", SLUGS)
def test_random_requests_give_events_or_a_normalize_error(slug: str) -> None:
    @fuzz_settings(40)
    @given(request=random_requests())
    def run(request: Request) -> None:
        check(slug, request.body, request.content_type, request.headers)

    run()


@pytest.mark.parametrize("slug", SLUGS)
def test_mutated_fixtures_give_events_or_a_normalize_error(slug: str) -> None:
    @fuzz_settings(80)
    @given(request=mutated_requests(slug))
    def run(request: Request) -> None:
        check(slug, request.body, request.content_type, request.headers)

    run()


@pytest.mark.parametrize("slug", SLUGS)
def test_another_esps_fixtures_give_events_or_a_normalize_error(slug: str) -> None:
    """A webhook posted to the wrong ESP's URL (a misconfigured ESP account) is still only a dead letter."""
    others = [other for other in SLUGS if other != slug]

    @fuzz_settings(20)
    @given(request=st.sampled_from(others).flatmap(lambda other: mutated_requests(other, max_mutations=1)))
    def run(request: Request) -> None:
        check(slug, request.body, request.content_type, request.headers)

    run()
