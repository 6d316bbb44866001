"""Parse the dates that feeds and web pages print into aware UTC datetimes.

Pure: does no I/O and never reads the clock; relative dates ("2 hours ago", "вчера в 14:05") are
resolved against the `now` the caller passes, and are None without it. Understands RFC 822/2822
(also sloppy variants such as ``Thu,28 Jul 2022 4:35:5 GMT+9`` and named zones like EST or MSK),
ISO 8601, unix timestamps, numeric ``18.04.2023 14:05``, and month names in English, Russian
(nominative, genitive, abbreviated) and Kazakh. Anything else gives None, never an exception.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

__all__ = ["parse_date"]

_MAX_INPUT = 300  # scraped date strings are short; a longer text is cut (bounds regex work)
_MIN_YEAR, _MAX_YEAR = 1900, 2200

# Month name prefixes -> month number. A word names a month when it starts with one of these stems
# (so "апреля", "апр.", "April", "Apr" all match); stems are chosen so that no two months collide.
_MONTH_STEMS: tuple[tuple[str, int], ...] = (
    # English
    ("jan", 1), ("feb", 2), ("mar", 3), ("apr", 4), ("may", 5), ("jun", 6),
    ("jul", 7), ("aug", 8), ("sep", 9), ("oct", 10), ("nov", 11), ("dec", 12),
    # Russian: январь/января/янв., ..., май/мая, июнь/июня, июль/июля
    ("янв", 1), ("фев", 2), ("мар", 3), ("апр", 4), ("мая", 5), ("май", 5), ("июн", 6),
    ("июл", 7), ("авг", 8), ("сен", 9), ("окт", 10), ("ноя", 11), ("дек", 12),
    # Kazakh: қаңтар, ақпан, наурыз, сәуір, мамыр, маусым, шілде, тамыз, қыркүйек, қазан, қараша, желтоқсан
    ("қаң", 1), ("ақп", 2), ("нау", 3), ("сәу", 4), ("мам", 5), ("мау", 6),
    ("шіл", 7), ("там", 8), ("қыр", 9), ("қаз", 10), ("қар", 11), ("жел", 12),
)  # fmt: skip
_MONTHS = dict(_MONTH_STEMS)

# Zone abbreviations seen in feeds; hours east of UTC.
_ZONES: dict[str, float] = {
    "z": 0, "ut": 0, "utc": 0, "gmt": 0, "wet": 0,
    "est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7,
    "akst": -9, "akdt": -8, "hst": -10, "ast": -4, "adt": -3,
    "bst": 1, "cet": 1, "cest": 2, "met": 1, "mest": 2, "eet": 2, "eest": 3,
    "msk": 3, "msd": 4, "trt": 3, "gst": 4, "pkt": 5, "ist": 5.5, "yekt": 5, "aqtt": 5, "orat": 5,
    "almt": 5, "qyzt": 5, "omst": 6, "novt": 7, "krat": 7, "ict": 7, "wib": 7, "hkt": 8, "sgt": 8,
    "awst": 8, "jst": 9, "kst": 9, "acst": 9.5, "aest": 10, "aedt": 11, "nzst": 12, "nzdt": 13,
}  # fmt: skip

_LETTERS = r"[^\W\d_]"
_ZONE_RE = (
    r"(?P<zone>[+-]\d{2}:?\d{2}|(?:gmt|utc|ut)\s*[+-]\s*\d{1,2}(?::?\d{2})?|[+-]\d{1,2}(?=\s*$)"
    r"|(?<![^\W\d_])(?:" + "|".join(sorted(_ZONES, key=len, reverse=True)) + r")(?![^\W\d_]))"
)
_TIME_RE = re.compile(
    r"(?<![\d.:])(?P<h>\d{1,2}):(?P<mi>\d{1,2})(?::(?P<s>\d{1,2})(?:[.,](?P<frac>\d{1,9}))?)?"
    r"(?:\s*(?P<ampm>[ap]\.?\s?m\.?)(?![^\W\d_]))?"
    r"(?:\s*" + _ZONE_RE + r")?",
    re.IGNORECASE,
)
_MONTH_WORD = _LETTERS + r"{3,}\.?"
_DAY_MONTH_YEAR = re.compile(
    r"(?<!\d)(?P<d>\d{1,2})(?:st|nd|rd|th)?\.?\s*(?:of\s+)?[\s\-/]*(?P<mon>" + _MONTH_WORD + r")[\s,\-/]*"
    r"(?P<y>\d{4}|\d{2})?(?!\d)",
    re.IGNORECASE,
)
_MONTH_DAY_YEAR = re.compile(
    r"(?P<mon>" + _MONTH_WORD + r")\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?(?!\d)(?:,?\s+(?P<y>\d{4}))?",
    re.IGNORECASE,
)
_YEAR_DAY_MONTH = re.compile(  # Kazakh order: "2023 жылғы 18 сәуір"
    r"(?<!\d)(?P<y>\d{4})\s*(?:ж\.?|жыл\w*)?\s+(?P<d>\d{1,2})\s+(?P<mon>" + _MONTH_WORD + r")",
    re.IGNORECASE,
)
_NUMERIC_DMY = re.compile(r"(?<![\d.])(?P<d>\d{1,2})[./](?P<m>\d{1,2})[./](?P<y>\d{4}|\d{2})(?![\d.])")
_NUMERIC_YMD = re.compile(r"(?<!\d)(?P<y>\d{4})[./-](?P<m>\d{1,2})[./-](?P<d>\d{1,2})(?!\d)")
_RFC822 = re.compile(  # "Tue, 17 Feb 2026 20:01:20 +0000", "17 Feb 26 20:01 GMT"
    r"(?:[A-Za-z]{3,9},?\s*)?(?P<d>\d{1,2})\s(?P<mon>[A-Za-z]{3})\s(?P<y>\d{4}|\d{2})\s"
    r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?(?:\s(?P<zone>[+-]\d{4}|[A-Za-z]{1,5}))?$"
)
_UNIX = re.compile(r"\d{9,13}(?:\.\d+)?")
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}T\d")
_ISO_LOOSE = re.compile(
    r"(?P<y>\d{4})-?(?P<m>\d{2})-?(?P<d>\d{2})(?:[T\s]+(?P<h>\d{2}):?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:[.,]\d+)?)?"
    r"\s*(?P<zone>z|[+-]\d{2}(?::?\d{2})?)?)?$",
    re.IGNORECASE,
)

_UNITS: tuple[tuple[str, str], ...] = (
    # (word prefix, unit); the first prefix that a word starts with wins
    ("sec", "seconds"), ("min", "minutes"), ("hour", "hours"), ("hr", "hours"), ("day", "days"),
    ("week", "weeks"), ("month", "months"), ("mon", "months"), ("year", "years"), ("yr", "years"),
    ("сек", "seconds"), ("мин", "minutes"), ("час", "hours"), ("ден", "days"), ("дн", "days"),
    ("сут", "days"), ("нед", "weeks"), ("мес", "months"), ("год", "years"), ("лет", "years"),
    ("сағ", "hours"), ("күн", "days"), ("апт", "weeks"), ("ай", "months"), ("жыл", "years"),
)  # fmt: skip
_SHORT_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks", "y": "years",
                "ч": "hours", "д": "days", "мес": "months"}  # fmt: skip
_AGO = re.compile(
    r"(?:(?P<n>\d+)\s*|(?P<word>an?|one|одн[уа]|один)\s+)?(?P<unit>" + _LETTERS + r"+)\.?\s+(?:ago|назад|бұрын)",
    re.IGNORECASE,
)
_DAY_WORDS: dict[str, int] = {
    "today": 0, "yesterday": -1, "сегодня": 0, "вчера": -1, "позавчера": -2,
    "бүгін": 0, "кеше": -1,
}  # fmt: skip
_NOW_WORDS = ("just now", "только что", "right now", "жаңа ғана", "қазір")


def parse_date(text: str, *, now: datetime | None = None, tz: tzinfo = UTC) -> datetime | None:
    """Return the aware UTC datetime `text` names, or None when it names none.

    `tz` is the zone of times printed without one. `now` (aware) resolves relative dates.
    """
    if not isinstance(text, str):
        return None
    value = " ".join(text[:_MAX_INPUT].split())
    if not value:
        return None
    try:
        return _parse(value, now, tz)
    except (ValueError, OverflowError, ArithmeticError):
        return None


def _parse(value: str, now: datetime | None, tz: tzinfo) -> datetime | None:
    rfc = _RFC822.match(value)
    if rfc is not None:  # the common feed case, read without the general machinery
        found = _parse_rfc822(rfc, tz)
        if found is not None:
            return found
    if _ISO_START.match(value):
        found = _parse_iso(value, tz)
        if found is not None:
            return found
    if _UNIX.fullmatch(value):
        return _parse_unix(value)
    lowered = value.lower()
    today = _as_utc(now, tz).astimezone(tz).date() if now is not None else None
    absolute = _parse_absolute(lowered, tz, today)
    if absolute is not None:
        return absolute
    return _parse_relative(lowered, now, tz)


def _parse_rfc822(match: re.Match[str], tz: tzinfo) -> datetime | None:
    month = _MONTHS.get(match["mon"].lower())
    if month is None:
        return None
    when = _make((_year(match["y"]), month, int(match["d"])), (int(match["h"]), int(match["mi"]), int(match["s"] or 0)))
    offset = _zone_offset(match["zone"]) if match["zone"] else None
    if match["zone"] and offset is None:
        return None
    return _finish(when, offset, tz)


def _parse_iso(value: str, tz: tzinfo) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        match = _ISO_LOOSE.match(value)
        if match is None:
            return None
        day = (int(match["y"]), int(match["m"]), int(match["d"]))
        when = _make(day, (int(match["h"] or 0), int(match["mi"] or 0), int(match["s"] or 0)))
        offset = _zone_offset(match["zone"]) if match["zone"] else None
        return _finish(when, offset, tz)
    return _to_utc(parsed, tz)


def _parse_unix(value: str) -> datetime | None:
    seconds = float(value)
    if len(value.partition(".")[0]) == 13:  # milliseconds
        seconds /= 1000
    parsed = datetime.fromtimestamp(seconds, UTC)
    return parsed if _MIN_YEAR <= parsed.year <= _MAX_YEAR else None


def _parse_relative(lowered: str, now: datetime | None, tz: tzinfo) -> datetime | None:
    if now is None:
        return None
    now_utc = _as_utc(now, tz)
    if any(word in lowered for word in _NOW_WORDS):
        return now_utc
    ago = _AGO.search(lowered)
    if ago is not None:
        unit = _unit(ago["unit"])
        if unit is not None:
            return now_utc - _amount(ago["n"], unit)
    for word, shift in _DAY_WORDS.items():
        if word in lowered and re.search(r"(?<!\w)" + word + r"(?!\w)", lowered):
            local_day = now_utc.astimezone(tz).date() + timedelta(days=shift)
            clock = _TIME_RE.search(lowered)
            when = _clock_on(local_day, clock)
            return when.replace(tzinfo=tz).astimezone(UTC)
    return None


def _unit(word: str) -> str | None:
    if word in _SHORT_UNITS:
        return _SHORT_UNITS[word]
    for prefix, unit in _UNITS:
        if word.startswith(prefix):
            return unit
    return None


def _amount(count: str | None, unit: str) -> timedelta:
    n = int(count) if count and count.isdigit() else 1
    if unit == "months":
        return timedelta(days=30 * n)
    if unit == "years":
        return timedelta(days=365 * n)
    return timedelta(**{unit: n})


def _clock_on(day: date, clock: re.Match[str] | None) -> datetime:
    if clock is None:
        return datetime.combine(day, time())
    hour = _hour(int(clock["h"]), clock["ampm"])
    return datetime.combine(day, time(hour, int(clock["mi"]), int(clock["s"] or 0)))


def _parse_absolute(lowered: str, tz: tzinfo, today: date | None) -> datetime | None:
    clock = _TIME_RE.search(lowered)
    rest = lowered
    if clock is not None:
        rest = lowered[: clock.start()] + " " + lowered[clock.end() :]
    day = _find_day(rest, today)
    if day is None:
        return None
    if clock is None:
        return _finish(datetime.combine(day, time()), _trailing_zone(rest), tz)
    when = _clock_on(day, clock)
    if clock["frac"]:
        when = when.replace(microsecond=int(clock["frac"][:6].ljust(6, "0")))
    offset = _zone_offset(clock["zone"]) if clock["zone"] else None
    if clock["zone"] and offset is None:
        return None  # "+9999": a zone that is no zone makes the whole time doubtful
    return _finish(when, offset, tz)


def _find_day(text: str, today: date | None) -> date | None:
    for pattern in (_YEAR_DAY_MONTH, _DAY_MONTH_YEAR, _MONTH_DAY_YEAR):
        for match in pattern.finditer(text):
            month = _month(match["mon"])
            if month is None:
                continue
            if match["y"]:
                return _make_day(_year(match["y"]), month, int(match["d"]))
            if text[match.end() :].lstrip(" ,-/")[:1].isdigit():
                continue  # "1 January 10000": digits that are no year
            if today is not None:  # "18 апреля, 14:05": this year, unless that is still to come
                day = _make_day(today.year, month, int(match["d"]))
                if day is not None and day > today:
                    day = _make_day(today.year - 1, month, int(match["d"]))
                return day
    numeric = _NUMERIC_YMD.search(text)
    if numeric is not None:
        return _make_day(int(numeric["y"]), int(numeric["m"]), int(numeric["d"]))
    numeric = _NUMERIC_DMY.search(text)
    if numeric is not None:
        return _make_day(_year(numeric["y"]), int(numeric["m"]), int(numeric["d"]))
    return None


def _month(word: str) -> int | None:
    return _MONTHS.get(word[:3].rstrip("."))


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 2000 if year < 70 else 1900
    return year


def _hour(hour: int, ampm: str | None) -> int:
    if ampm:
        if ampm.startswith("p") and hour < 12:
            return hour + 12
        if ampm.startswith("a") and hour == 12:
            return 0
    return hour


def _make_day(year: int, month: int, day: int) -> date | None:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _make(day: tuple[int, int, int], clock: tuple[int, int, int]) -> datetime:
    """datetime(*day, *clock); a leap second (:60) stays in its minute."""
    hour, minute, second = clock
    return datetime(*day, hour, minute, min(second, 59))


def _trailing_zone(text: str) -> timedelta | None:
    match = re.search(_ZONE_RE, text, re.IGNORECASE)
    return _zone_offset(match["zone"]) if match else None


@functools.lru_cache(maxsize=256)  # a feed writes the same zone on every item
def _zone_offset(zone: str) -> timedelta | None:
    zone = zone.replace(" ", "").lower()
    if zone in _ZONES:
        return timedelta(hours=_ZONES[zone])
    for prefix in ("gmt", "utc", "ut"):
        if zone.startswith(prefix):
            zone = zone[len(prefix) :]
            break
    sign = -1 if zone.startswith("-") else 1
    digits = zone.lstrip("+-").replace(":", "")
    if not digits.isdigit():
        return None
    if len(digits) <= 2:
        hours, minutes = int(digits), 0
    else:
        hours, minutes = int(digits[:-2]), int(digits[-2:])
    if hours > 14 or minutes > 59:
        return None
    return sign * timedelta(hours=hours, minutes=minutes)


def _finish(when: datetime | None, offset: timedelta | None, tz: tzinfo) -> datetime | None:
    if when is None or not _MIN_YEAR <= when.year <= _MAX_YEAR:
        return None
    zone = timezone(offset) if offset is not None else tz
    return when.replace(tzinfo=zone).astimezone(UTC)


def _as_utc(when: datetime, tz: tzinfo) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(UTC)


def _to_utc(when: datetime, tz: tzinfo) -> datetime | None:
    if not _MIN_YEAR <= when.year <= _MAX_YEAR:
        return None
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(UTC)
