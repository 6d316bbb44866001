"""Date parsing: every format the feeds and pages of the region print, and never an exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.dates import parse_date

NOW = datetime(2023, 4, 20, 12, 0, tzinfo=UTC)
ALMATY = ZoneInfo("Asia/Almaty")
MOSCOW = ZoneInfo("Europe/Moscow")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # RFC 822 / 2822 and the sloppy variants feeds really publish
        ("Tue, 17 Feb 2026 20:01:20 +0500", utc(2026, 2, 17, 15, 1, 20)),
        ("Sun, 28 Sep 2025 12:00:00 GMT", utc(2025, 9, 28, 12, 0)),
        ("Wed, 17 Jan 2018 15:50:00 EST", utc(2018, 1, 17, 20, 50)),
        ("Sat, 18 May 2019 10:52:50 MSK", utc(2019, 5, 18, 7, 52, 50)),
        ("Thu,28 Jul 2022 4:35:5 GMT+9", utc(2022, 7, 27, 19, 35, 5)),
        ("Wed, 19 jan 2026 00:00:00 GMT", utc(2026, 1, 19)),
        ("17 Feb 26 20:01 GMT", utc(2026, 2, 17, 20, 1)),
        ("  Wed, 15 May 2019 20:48:02 +0000\n ", utc(2019, 5, 15, 20, 48, 2)),
        # ISO 8601
        ("2026-02-17T17:36:36-0500", utc(2026, 2, 17, 22, 36, 36)),
        ("2025-11-01T20:43:00.031-04:00", datetime(2025, 11, 2, 0, 43, 0, 31000, tzinfo=UTC)),
        ("2023-04-18T14:05:00Z", utc(2023, 4, 18, 14, 5)),
        ("2023-04-18 14:05", utc(2023, 4, 18, 14, 5)),
        ("2023-04-18", utc(2023, 4, 18)),
        ("20230418T140500Z", utc(2023, 4, 18, 14, 5)),
        ("2023-04-18 14:05 MSK", utc(2023, 4, 18, 11, 5)),
        # day, month name, year in English, Russian (genitive, nominative, abbreviated) and Kazakh
        ("12 April 2023", utc(2023, 4, 12)),
        ("April 12, 2023", utc(2023, 4, 12)),
        ("Feb 17, 2026 3:45 pm", utc(2026, 2, 17, 15, 45)),
        ("18 апреля 2023", utc(2023, 4, 18)),
        ("18 апреля 2023, 14:05", utc(2023, 4, 18, 14, 5)),
        ("1 марта 2023 г. в 09:15", utc(2023, 3, 1, 9, 15)),
        ("18 апр. 2023", utc(2023, 4, 18)),
        ("5 Май 2023", utc(2023, 5, 5)),
        ("3 сентябрь 2022", utc(2022, 9, 3)),
        ("14:05, 18 апреля 2023", utc(2023, 4, 18, 14, 5)),
        ("Опубликовано: 2 декабря 2021 года в 18:30", utc(2021, 12, 2, 18, 30)),
        ("18 сәуір 2023, 14:05", utc(2023, 4, 18, 14, 5)),
        ("2023 жылғы 18 сәуір", utc(2023, 4, 18)),
        ("1 қаңтар 2024", utc(2024, 1, 1)),
        ("29 ақпан 2024", utc(2024, 2, 29)),
        ("5 қыркүйек 2022", utc(2022, 9, 5)),
        ("31 желтоқсан 2023 10:00", utc(2023, 12, 31, 10, 0)),
        # numeric
        ("18.04.2023 14:05", utc(2023, 4, 18, 14, 5)),
        ("18.04.2023", utc(2023, 4, 18)),
        ("18/04/2023 14:05:30", utc(2023, 4, 18, 14, 5, 30)),
        ("2023/04/18", utc(2023, 4, 18)),
        # unix timestamps, seconds and milliseconds
        ("1681819500", utc(2023, 4, 18, 12, 5)),
        ("1681819500123", datetime(2023, 4, 18, 12, 5, 0, 123000, tzinfo=UTC)),
    ],
)
def test_absolute_formats(text: str, expected: datetime) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("kazakh", ["наурыз", "мамыр", "маусым", "шілде", "тамыз", "қазан", "қараша"])
def test_every_kazakh_month(kazakh: str) -> None:
    month = ["наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз", "қыркүйек", "қазан", "қараша"].index(kazakh) + 3
    assert parse_date(f"10 {kazakh} 2023") == utc(2023, month, 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 hours ago", NOW - timedelta(hours=2)),
        ("5 minutes ago", NOW - timedelta(minutes=5)),
        ("an hour ago", NOW - timedelta(hours=1)),
        ("5h ago", NOW - timedelta(hours=5)),
        ("3 days ago", NOW - timedelta(days=3)),
        ("3 часа назад", NOW - timedelta(hours=3)),
        ("час назад", NOW - timedelta(hours=1)),
        ("15 минут назад", NOW - timedelta(minutes=15)),
        ("2 дня назад", NOW - timedelta(days=2)),
        ("10 минут бұрын", NOW - timedelta(minutes=10)),
        ("just now", NOW),
        ("только что", NOW),
        ("yesterday, 14:05", utc(2023, 4, 19, 14, 5)),
        ("вчера в 14:05", utc(2023, 4, 19, 14, 5)),
        ("Сегодня, 09:30", utc(2023, 4, 20, 9, 30)),
        ("сегодня", utc(2023, 4, 20)),
        ("кеше 10:00", utc(2023, 4, 19, 10, 0)),
        ("18 апреля, 14:05", utc(2023, 4, 18, 14, 5)),  # no year: this year
        ("31 декабря", utc(2022, 12, 31)),  # no year, and this year's would be in the future
    ],
)
def test_relative_formats_need_now(text: str, expected: datetime) -> None:
    assert parse_date(text, now=NOW) == expected
    assert parse_date(text) is None


def test_relative_day_is_the_local_day() -> None:
    now = datetime(2023, 4, 19, 22, 30, tzinfo=UTC)  # already the 20th in Moscow
    assert parse_date("вчера в 14:05", now=now, tz=MOSCOW) == utc(2023, 4, 19, 11, 5)


def test_naive_times_take_the_given_zone() -> None:
    assert parse_date("18.04.2023 14:05", tz=ALMATY) == utc(2023, 4, 18, 8, 5)
    assert parse_date("2023-04-18T14:05:00", tz=MOSCOW) == utc(2023, 4, 18, 11, 5)
    assert parse_date("2023-04-18T14:05:00+00:00", tz=MOSCOW) == utc(2023, 4, 18, 14, 5)


def test_results_are_aware_utc() -> None:
    result = parse_date("2023-04-18T14:05:00+06:00")
    assert result is not None and result.tzinfo is UTC
    assert result == datetime(2023, 4, 18, 14, 5, tzinfo=timezone(timedelta(hours=6)))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "garbage",
        "Март 2023",  # no day
        "31 February 2023",
        "Τρί, 29 Ιούλ 2004 12:53:00 GMT",  # Greek names: not understood, not misread
        "99.99.9999",
        "2023-13-45T99:99:99",
        "99999999999999999999",
        "1 January 10000",
        "25:61 18.04.2023",
        "Tue, 17 Feb 2026 20:01:20 +9999",
    ],
)
def test_unparseable_is_none(text: str) -> None:
    assert parse_date(text, now=NOW) is None


@given(st.text(max_size=400))
def test_never_raises(text: str) -> None:
    result = parse_date(text, now=NOW)
    assert result is None or result.tzinfo is UTC


@given(st.text(alphabet="0123456789 :.,-/+TZаяпрелсгодняназдчгтв", max_size=60), st.datetimes())
def test_never_raises_on_date_like_text(text: str, now: datetime) -> None:
    result = parse_date(text, now=now, tz=ALMATY)
    assert result is None or result.tzinfo is UTC
