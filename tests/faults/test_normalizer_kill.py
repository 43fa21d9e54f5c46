"""The normalizer SIGKILLed again and again during a 50,000-event run: the audit finds nothing missing."""

from pathlib import Path

import pytest

from espstream.embedded import EmbeddedBroker
from tests.faults.helpers import (
    committed_total,
    postmark_delivery,
    produce_raw,
    raw_ends,
    run_audit,
    sendgrid_batch,
    sns_subscription_confirmation,
    topics_env,
)
from tests.support.services import Service, eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

JSON = "application/json"
BATCHES, PER_BATCH, SINGLES = 12_400, 4, 400  # 49,600 + 400 = 50,000 events
BROKEN, EMPTY, CONFIRMATIONS = 50, 50, 10
# Where in the run each kill lands: the share of raw records the normalizer has committed.
KILL_AT = (0.1, 0.3, 0.5)


def test_normalizer_killed_three_times_loses_no_raw_record(
    broker: EmbeddedBroker, registry_url: str, tmp_path: Path
) -> None:
    env = topics_env(broker.bootstrap_servers, registry_url)
    webhooks = [
        *(("sendgrid", sendgrid_batch(PER_BATCH), JSON, None) for _ in range(BATCHES)),
        *(("postmark", postmark_delivery(f"single-{n}"), JSON, None) for n in range(SINGLES)),
        *(("postmark", b"{broken json %d" % n, JSON, None) for n in range(BROKEN)),
        *(("sendgrid", b"[]", JSON, None) for _ in range(EMPTY)),
        *(sns_subscription_confirmation() for _ in range(CONFIRMATIONS)),
    ]
    written = produce_raw(broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"], webhooks)
    total = raw_ends(written)
    assert total == len(webhooks)

    def progress() -> int:
        return committed_total(env, env["ESPSTREAM_NORMALIZER_GROUP"], env["ESPSTREAM_RAW_TOPIC"])

    log = tmp_path / "normalizer.log"
    normalizer = Service(["normalize"], env, log).start()
    killed_at = []
    try:
        for share in KILL_AT:
            eventually(lambda: progress() >= share * total, timeout=120, interval=0.05)
            normalizer.kill()  # SIGKILL: no commit, no flush, whatever batch was in hand
            killed_at.append(progress())
            normalizer = Service(["normalize"], env, log).start()
        assert all(done < total for done in killed_at), f"the run ended before a kill: {killed_at} of {total}"
        eventually(lambda: progress() == total, timeout=240, interval=0.5)
    finally:
        normalizer.stop()

    status, text, _ = run_audit(env)
    print(f"normalizer SIGKILLed after {killed_at} of {total} raw records were committed\n{text}")
    status_json, _, report = run_audit(env, "--json")
    assert status == status_json == 0, text
    totals = report["totals"]
    assert totals["missing"] == 0
    assert totals["raw_records"] == total
    assert totals["events"] == BATCHES * PER_BATCH + SINGLES == 50_000
    assert totals["with_events"] == BATCHES + SINGLES
    assert totals["dead_lettered"] == BROKEN
    assert totals["empty_by_design"] == EMPTY + CONFIRMATIONS
    # Repeats are allowed (at least once), and reported: work between the last commit and a kill.
    [total_row] = [line.split() for line in text.splitlines() if line.startswith("total ")]
    assert total_row[-2:] == [str(totals["duplicate_events"]), str(totals["duplicate_dead_letters"])]
