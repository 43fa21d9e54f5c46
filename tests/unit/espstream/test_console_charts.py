"""The rates page's counting: events per ESP per bucket over the last hours, and the unknown share."""

from datetime import UTC, datetime

from espstream.console.charts import events_chart, rates, unknown_chart

NOW = datetime(2026, 11, 23, 16, 59, 30, tzinfo=UTC)


def minute(hour: int, minute: int) -> int:
    return int(datetime(2026, 11, 23, hour, minute, tzinfo=UTC).timestamp())


def test_events_land_in_their_five_minute_bucket_of_the_last_hour_and_older_ones_are_left_out() -> None:
    counted = rates({
        (minute(16, 58), "postmark", False): 3,
        (minute(16, 56), "postmark", True): 1,
        (minute(16, 1), "mailgun", False): 2,
        (minute(15, 50), "mailgun", False): 100,  # before the hour shown
    }, hours=1, now=NOW)
    assert counted.buckets == 12
    assert counted.start == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert counted.counts["postmark"][-1] == 4 and sum(counted.counts["postmark"]) == 4
    assert counted.counts["mailgun"][0] == 2 and sum(counted.counts["mailgun"]) == 2
    assert counted.unknown[-1] == 1
    [postmark, mailgun] = counted.table()
    assert (postmark["esp"], postmark["events"], postmark["unknown"], postmark["unknown_share"]) == ("postmark", 4, 1, 0.25)
    assert mailgun["per_minute"] == 2 / 60


def test_the_charts_stack_each_esp_s_bar_and_draw_the_unknown_share() -> None:
    counted = rates({(minute(16, 58), "postmark", False): 3, (minute(16, 58), "mailgun", True): 1}, hours=1, now=NOW)
    chart = events_chart(counted)
    assert [bar.title for bar in chart.bars] == ["16:55 postmark: 3", "16:55 mailgun: 1"]
    postmark, mailgun = chart.bars
    assert mailgun.y + mailgun.height == postmark.y  # stacked
    assert postmark.y + postmark.height == chart.bottom
    assert [label for _, label in chart.grid] == ["0", "1", "2", "3", "4"]
    [share] = unknown_chart(counted).bars
    assert share.title == "16:55: 25.0% unknown (1 of 4)"


def test_a_day_is_in_hour_buckets() -> None:
    counted = rates({(minute(3, 10), "sendgrid", False): 5}, hours=24, now=NOW)
    assert counted.buckets == 24 and sum(counted.counts["sendgrid"]) == 5
