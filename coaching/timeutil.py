"""School-local calendar arithmetic: timezone, months, school years, windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from coaching.settings import get_settings


def school_tz() -> ZoneInfo:
    """The school's timezone (COACHLOOP_TIMEZONE, default America/Los_Angeles)."""
    return ZoneInfo(get_settings().school_timezone)


def as_utc(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime; naive input is read as school-local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=school_tz())
    return moment.astimezone(UTC)


def local_date(moment: datetime) -> date:
    """The school-local calendar date of `moment`."""
    return as_utc(moment).astimezone(school_tz()).date()


def month_key(moment: datetime) -> str:
    """YYYY-MM of `moment` in the school's timezone."""
    return local_date(moment).strftime("%Y-%m")


def local_day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """UTC instants covering school-local dates start..end inclusive: [start 00:00, end+1 00:00)."""
    tz = school_tz()
    lo = datetime.combine(start, time.min, tzinfo=tz).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    return lo, hi


def school_year_of(day: date) -> tuple[date, date]:
    """First and last day of the school year containing `day` (start month is a setting)."""
    start_month = get_settings().school_year_start_month
    year = day.year if day.month >= start_month else day.year - 1
    first = date(year, start_month, 1)
    last = date(year + 1, start_month, 1) - timedelta(days=1)
    return first, last


def days_between(earlier: datetime, later: datetime) -> int:
    """Whole calendar days between two instants, in the school's timezone."""
    return (local_date(later) - local_date(earlier)).days
