"""Calendar functions (``minute``, ``hour``, ``day_of_week``, ``days_in_month``, ``year``, ...), in UTC.

As 2.42's dateWrapper: without an argument they read the evaluation time (whole seconds, Go's
``enh.Ts / 1000`` truncating toward zero), with one they read each sample's value as Unix
seconds (Go's ``int64(v)``, truncating too) and drop ``__name__``. The civil date comes from
integer arithmetic (Howard Hinnant's days-to-civil), not ``datetime``, so that any int64 second
count has an answer, as in Go.
"""

from __future__ import annotations

import math

from simkit.promql.types import Vector, check_unique, drop_name

DATE_FUNCTIONS = frozenset(
    ["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year"]
)
_INT64_MIN = -(2**63)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def go_seconds(ms: int) -> int:
    """``ms / 1000`` with Go's truncation toward zero."""
    return -(-ms // 1000) if ms < 0 else ms // 1000


def _int64(v: float) -> int:
    """Go's ``int64(v)`` on amd64: truncation; NaN, infinities and overflow give the minimum."""
    if math.isnan(v) or math.isinf(v) or not -(2.0**63) <= v < 2.0**63:
        return _INT64_MIN
    return int(v)


def _civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of ``days`` since 1970-01-01 in the proleptic Gregorian calendar."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def date_field(name: str, seconds: int) -> float:
    """The calendar field ``name`` of the UTC time ``seconds`` after the epoch."""
    days, rest = divmod(seconds, 86400)
    if name == "hour":
        return float(rest // 3600)
    if name == "minute":
        return float(rest % 3600 // 60)
    if name == "day_of_week":  # 1970-01-01 was a Thursday; Sunday is 0
        return float((days + 4) % 7)
    year, month, day = _civil(days)
    if name == "year":
        return float(year)
    if name == "month":
        return float(month)
    if name == "day_of_month":
        return float(day)
    if name == "days_in_month":
        return 29.0 if month == 2 and _leap(year) else float(_DAYS_IN_MONTH[month - 1])
    assert name == "day_of_year"
    before = sum(_DAYS_IN_MONTH[: month - 1]) + (1 if month > 2 and _leap(year) else 0)
    return float(before + day)


def date_vector(name: str, vec: Vector) -> Vector:
    """``name(v)``: each sample's value read as Unix seconds."""
    return check_unique([(drop_name(lb), date_field(name, _int64(v))) for lb, v in vec])
