"""Working days in Vietnam: Monday–Friday, less public holidays and Tết.

Public holidays come from the ``holidays`` package's Vietnamese calendar (Tết, Hùng Kings, 30/4,
1/5, National Day and the substituted days it knows). The Government also moves days every year
(extra days off bridged to a holiday, Saturdays worked in exchange): ``extra_days_off`` and
``make_up_days`` carry those, and a make-up day is a working day even on a weekend.

Those yearly moves come from two sources, merged by ``work_calendar()``, the one calendar every
deadline is computed with: the days an administrator enters on ``/admin/calendar``
(``CalendarDay``, with the notice that decided them — the Prime Minister's, or the Ministry of
Home Affairs' for the public sector), and the ``extra_days_off`` / ``make_up_days`` settings.
This module checks and stores those days; entering one as a business operation (with the report
deadlines it moves) is ``core.reporting.calendar_changes``, above the reports it changes.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import holidays
from peewee import JOIN, CharField, Check, DateField, DateTimeField, ForeignKeyField, TextField

from core import generations
from core.db import CoreModel, db
from core.errors import Forbidden, NotFound, ValidationError
from core.models import User, utcnow

ONE_DAY = dt.timedelta(days=1)

_HOLIDAY_DATES: dict[int, frozenset[dt.date]] = {}  # year → its public holidays, kept per process
_HOLIDAYS_LOCK = threading.Lock()


def _holiday_dates(year: int) -> frozenset[dt.date]:
    """The public holidays of ``year``. The package's calendar costs about a millisecond to build and
    a microsecond per question; its days depend on the year alone (none of a year's days falls in
    another year), so they are worked out once per process and year."""
    dates = _HOLIDAY_DATES.get(year)
    if dates is None:
        dates = frozenset(holidays.country_holidays("VN", years=year))
        with _HOLIDAYS_LOCK:
            _HOLIDAY_DATES[year] = dates
    return dates


class WorkCalendar:
    def __init__(self, extra_days_off: Iterable[dt.date] = (), make_up_days: Iterable[dt.date] = ()):
        self.extra_days_off = frozenset(extra_days_off)
        self.make_up_days = frozenset(make_up_days)
        self._names = None  # the package's calendar, built when a holiday's name is first asked

    def _public_holiday(self, day: dt.date) -> bool:
        return day in _holiday_dates(day.year)

    def holiday_name(self, day: dt.date) -> str | None:
        if not self._public_holiday(day):
            return None
        if self._names is None:
            # expand=True (the default): asking about a day loads that day's year.
            self._names = holidays.country_holidays("VN")
        return self._names.get(day)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.make_up_days:
            return True
        if day in self.extra_days_off or day.weekday() >= 5:
            return False
        return not self._public_holiday(day)

    def next_working_day(self, day: dt.date) -> dt.date:
        """``day`` itself when it is a working day, otherwise the first working day after it."""
        while not self.is_working_day(day):
            day += ONE_DAY
        return day

    def add_working_days(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``day`` (the next working day after ``day`` is number 1).
        ``n == 0`` gives ``day`` itself."""
        if n < 0:
            raise ValueError("n must not be negative")
        while n:
            day += ONE_DAY
            if self.is_working_day(day):
                n -= 1
        return day

    def working_days_between(self, a: dt.date, b: dt.date) -> int:
        """Working days strictly after ``a`` up to and including ``b`` (0 when ``b <= a``)."""
        count, day = 0, a
        while day < b:
            day += ONE_DAY
            count += self.is_working_day(day)
        return count


# -- the Government's yearly moves, as an administrator enters them -------------------------------

PERMISSION = "core.calendar.admin"
DAY_OFF, MAKE_UP = "day_off", "make_up"
KINDS = (DAY_OFF, MAKE_UP)
REASON_MAX = 500


class CalendarDay(CoreModel):
    """One day the Government moved: an extra day off, or a (Saturday) worked in exchange."""

    day = DateField(unique=True)
    kind = CharField(max_length=8, constraints=[Check("kind IN ('day_off', 'make_up')")])
    reason = TextField()  # the legal basis: the notice that decided it
    created_at = DateTimeField(default=utcnow)
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")


# The change counter (core.generations) of the stored days: raised by ``store_day`` and ``delete_day``,
# the only writers of ``CalendarDay``, in their transaction.
GENERATION = "calendar"
_STORED: dict[int, tuple] = {}  # id(database) → (database, generation, days off, make-up days)
_STORED_SIZE = 4  # databases remembered (the primary, a replica; tests open many)
_STORED_LOCK = threading.Lock()


def stored_days(generation: int | None = None) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """(extra days off, make-up days) as stored, kept per process and database while the change
    counter ``GENERATION`` stays the same: one primary-key read instead of the table, or none when
    the caller read the counter already (``generation``, read before the days: a copy is never
    newer than the counter it is kept under, at worst read again once). Inside a transaction the
    table is read and nothing kept: the transaction's own write may still roll back."""
    database = db.obj
    if database.in_transaction():
        return _read_stored_days()
    if generation is None:
        generation, = generations.read(GENERATION)
    hit = _STORED.get(id(database))
    if hit is not None and hit[0] is database and hit[1] == generation:
        return hit[2], hit[3]
    days = _read_stored_days()
    with _STORED_LOCK:
        if len(_STORED) >= _STORED_SIZE:
            _STORED.clear()
        _STORED[id(database)] = (database, generation, *days)  # the database held: its id is not reused
    return days


def _read_stored_days() -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    rows = list(CalendarDay.select(CalendarDay.day, CalendarDay.kind).tuples())
    return (frozenset(d for d, kind in rows if kind == DAY_OFF),
            frozenset(d for d, kind in rows if kind == MAKE_UP))


class StoredCalendar(WorkCalendar):
    """The working-day calendar with the stored days, read when first asked: inside the caller's
    database connection (a web handler builds it, a worker thread uses it). ``generation``: the
    change counter ``GENERATION`` as the caller read it (``known_generation``), saving its read."""

    def __init__(self, extra_days_off: Iterable[dt.date] = (), make_up_days: Iterable[dt.date] = ()):
        super().__init__(extra_days_off, make_up_days)
        self._loaded = False
        self._generation = None

    def known_generation(self, generation: int) -> None:
        """The counter, read by the caller in one of its own queries before the days are first asked."""
        self._generation = generation

    def is_working_day(self, day: dt.date) -> bool:
        if not self._loaded:
            days_off, make_up = stored_days(self._generation)
            self.extra_days_off |= days_off
            self.make_up_days |= make_up
            self._loaded = True
        return super().is_working_day(day)


def work_calendar(settings=None) -> WorkCalendar:
    """The calendar every deadline is computed with: public holidays, the stored days and the
    ``extra_days_off`` / ``make_up_days`` settings."""
    return StoredCalendar(getattr(settings, "extra_days_off", ()), getattr(settings, "make_up_days", ()))


@dataclass(frozen=True)
class Entry:
    """A moved day as the screen lists it; ``id`` None: from the settings (changed there only)."""

    day: dt.date
    kind: str
    reason: str
    id: int | None = None
    created_at: dt.datetime | None = None
    created_by: str = ""


def entries(year: int, settings=None) -> list[Entry]:
    """The moved days of ``year``, stored and from the settings, by date."""
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    query = (CalendarDay.select(CalendarDay, User).join(User, JOIN.LEFT_OUTER, on=(CalendarDay.created_by == User.id))
             .where(CalendarDay.day.between(start, end)))
    found = [Entry(r.day, r.kind, r.reason, r.id, r.created_at, r.created_by.full_name if r.created_by_id else "")
             for r in query]
    for kind, days in ((DAY_OFF, getattr(settings, "extra_days_off", ())),
                       (MAKE_UP, getattr(settings, "make_up_days", ()))):
        found += [Entry(d, kind, "") for d in days if start <= d <= end]
    return sorted(found, key=lambda e: (e.day, e.id is None))


def public_holidays(year: int, lang: str = "vi") -> list[tuple[dt.date, str]]:
    """The public holidays of ``year`` the ``holidays`` package knows, named in ``lang``."""
    named = holidays.country_holidays("VN", years=year, language="vi" if lang == "vi" else "en_US")
    return sorted(named.items())


def _check_admin(access) -> None:
    if not access.allowed(PERMISSION):
        raise Forbidden()


def _reason(text) -> str:
    reason = " ".join(str(text or "").split())
    if not reason or len(reason) > REASON_MAX:
        raise ValidationError({"reason": "calendar.error.reason"}, limit=REASON_MAX)
    return reason


def store_day(access, day, kind: str, reason: str, *, settings=None) -> CalendarDay:
    """Check and store an extra day off or a make-up working day, with its legal basis. Runs inside
    the caller's transaction: ``core.reporting.calendar_changes.add_day``, which also moves the
    deadlines the day changes and audits both (the calendar itself knows nothing of reports)."""
    _check_admin(access)
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise ValidationError({"day": "calendar.error.day"})
    if kind not in KINDS:
        raise ValidationError({"kind": "calendar.error.kind"})
    reason = _reason(reason)
    if day in getattr(settings, "extra_days_off", ()) or day in getattr(settings, "make_up_days", ()):
        raise ValidationError({"day": "calendar.error.in_settings"}, day=f"{day:%d/%m/%Y}")
    plain = WorkCalendar()  # without the moved days: is the day a working day by itself?
    if kind == DAY_OFF and not plain.is_working_day(day):
        raise ValidationError({"day": "calendar.error.already_off"}, day=f"{day:%d/%m/%Y}")
    if kind == MAKE_UP and plain.is_working_day(day):
        raise ValidationError({"day": "calendar.error.already_working"}, day=f"{day:%d/%m/%Y}")
    if CalendarDay.get_or_none(CalendarDay.day == day) is not None:
        raise ValidationError({"day": "calendar.error.exists"}, day=f"{day:%d/%m/%Y}")
    generations.bump(GENERATION)  # the copies of the stored days other requests keep (stored_days)
    return CalendarDay.create(day=day, kind=kind, reason=reason, created_by=access.actor)


def delete_day(access, entry_id: int, reason: str) -> tuple[CalendarDay, str]:
    """Check and delete a stored day (a notice withdrawn or entered by mistake); returns the row and
    the cleaned reason. Runs inside the caller's transaction:
    ``core.reporting.calendar_changes.remove_day``."""
    _check_admin(access)
    reason = _reason(reason)
    row = CalendarDay.get_or_none(CalendarDay.id == entry_id)
    if row is None:
        raise NotFound()
    row.delete_instance()
    generations.bump(GENERATION)  # the copies of the stored days other requests keep (stored_days)
    return row, reason
