"""Deadlines for sending a report (Decree 09/2019/NĐ-CP Art. 13) and the Art. 8 cl. 5 check.

A rule is either
- ``Nwd``: the N-th working day after the cut-off (the day after the cut-off is working day 1, as in
  the worked examples of the legal reference §1.5 — e.g. Khánh Hòa QĐ 01/2023 "02 ngày làm việc"), or
- ``day:D``: the D-th of the window's last month (Art. 13 cl. 1: the 25th for provinces → Government;
  TT 44/2019: the 20th). A day beyond the month's end (``day:31`` in June) means the month's last day.
- ``+Nwd``: the N-th working day after the previous level's (effective) deadline — the time a unit has
  to consolidate the reports it received (Art. 8 cl. 5, second case). Only a level that has a previous
  level may use it; ``check_chain`` refuses it on the first level.

Decision — a fixed day on a non-working day. The decree and the texts in the legal reference leave
open whether such a deadline moves (§1.5, "July 2026 monthly": 25/07/2026 is a Saturday). We move it
to the next working day, as deadlines are commonly counted in Vietnamese administrative practice
(by analogy with the Civil Code 2015 rule for time limits ending on a day off, Art. 148 cl. 5 — not
in the legal reference; confirm with the issuing body): a report sent on the Monday is on time. ``deadline_for`` returns that effective day; ``nominal_deadline`` the day the rule
names.

The Art. 8 cl. 5 check (``check_chain``) judges the rule as issued: it counts working days strictly
after the cut-off (or after the previous level's effective deadline, when its inputs arrive at the
latest) up to and including the level's *nominal* deadline, and wants at least one. So a "15th"
deadline after a Saturday 14/11/2026 cut-off is refused — Sunday 15/11 leaves zero working days — even
though the reporter could in practice send it on Monday: the regime itself breaks the decree.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import ValidationError
from core.regimes.periods import Window
from core.regimes.workdays import WorkCalendar

_RULE = re.compile(r"^\s*(?:(?P<after>\+)\s*)?(?:(?P<wd>\d{1,3})\s*wd|day\s*:\s*(?P<day>\d{1,2}))\s*$",
                   re.IGNORECASE)
MAX_WORKING_DAYS = 120


class DeadlineRuleError(ValidationError):
    """The text of a deadline rule cannot be read."""

    key = "deadlines.error.rule"

    def __init__(self, text: str):
        super().__init__({"deadline": "deadlines.error.rule"}, text=text)


class DeadlineAfterFirstError(ValidationError):
    """A ``+Nwd`` rule on the first level: there is no previous level's deadline to count from."""

    def __init__(self, level: str, rule: str):
        super().__init__({"deadline": "deadlines.error.after_first"}, level=level, rule=rule)
        self.key = "deadlines.error.after_first"


class DeadlineChainError(ValidationError):
    """A level's deadline leaves less than one working day (Art. 8 cl. 5)."""

    def __init__(self, key: str, **params):
        super().__init__({"deadline": key}, **params)
        self.key = key


@dataclass(frozen=True)
class DeadlineRule:
    kind: str  # "wd" (working days after the cut-off), "day" (day of the window's last month) or
    # "after" (working days after the previous level's deadline)
    n: int

    @classmethod
    def parse(cls, text: str) -> "DeadlineRule":
        m = _RULE.match(text or "")
        if not m or (m.group("after") and m.group("wd") is None):
            raise DeadlineRuleError(text)
        if m.group("wd") is not None:
            n = int(m.group("wd"))
            if not 1 <= n <= MAX_WORKING_DAYS:
                raise DeadlineRuleError(text)
            return cls("after" if m.group("after") else "wd", n)
        n = int(m.group("day"))
        if not 1 <= n <= 31:
            raise DeadlineRuleError(text)
        return cls("day", n)

    def __str__(self) -> str:
        return {"wd": f"{self.n}wd", "after": f"+{self.n}wd"}.get(self.kind, f"day:{self.n}")

    @property
    def after_previous(self) -> bool:
        return self.kind == "after"


def _rule(rule: DeadlineRule | str) -> DeadlineRule:
    return rule if isinstance(rule, DeadlineRule) else DeadlineRule.parse(rule)


def nominal_deadline(window: Window, rule: DeadlineRule | str, calendar: WorkCalendar,
                     previous: dt.date | None = None) -> dt.date:
    """The day the rule names, before any move off a non-working day. ``previous``: the previous
    level's effective deadline, which a ``+Nwd`` rule counts from."""
    rule = _rule(rule)
    if rule.kind == "after":
        if previous is None:
            raise DeadlineAfterFirstError("", str(rule))
        return calendar.add_working_days(previous, rule.n)
    if rule.kind == "wd":
        return calendar.add_working_days(window.end, rule.n)
    last = _calendar.monthrange(window.end.year, window.end.month)[1]
    return window.end.replace(day=min(rule.n, last))


def deadline_for(window: Window, rule: DeadlineRule | str, calendar: WorkCalendar,
                 previous: dt.date | None = None) -> dt.date:
    """The effective deadline: the nominal day, moved to the next working day when it is not one."""
    return calendar.next_working_day(nominal_deadline(window, rule, calendar, previous))


@dataclass(frozen=True)
class LevelDeadline:
    level: str
    rule: DeadlineRule
    nominal: dt.date
    deadline: dt.date
    working_days: int  # after the cut-off or the previous level's deadline, up to the nominal day


def check_chain(window: Window, rules_by_level: Mapping[str, DeadlineRule | str],
                calendar: WorkCalendar, *, strict: bool = True) -> list[LevelDeadline]:
    """Deadlines per reporting level, lowest level first (e.g. commune → department → province →
    Government). Refuses (``DeadlineChainError``) a level leaving less than one working day after the
    cut-off, or after the previous level's deadline (Decree 09/2019 Art. 8 cl. 5). A ``+Nwd`` rule
    on the first level is refused (``DeadlineAfterFirstError``) whatever ``strict`` says.
    ``strict=False`` computes the deadlines without the Art. 8 refusal (opening a period whose
    calendar changed after the regime was issued: the report still gets a deadline)."""
    result: list[LevelDeadline] = []
    for level, rule in rules_by_level.items():
        rule = _rule(rule)
        if rule.after_previous and not result:
            raise DeadlineAfterFirstError(level, str(rule))
        start = result[-1].deadline if result else window.end
        nominal = nominal_deadline(window, rule, calendar, result[-1].deadline if result else None)
        gap = calendar.working_days_between(start, nominal)
        if gap < 1 and strict:
            params = dict(level=level, rule=str(rule), deadline=f"{nominal:%d/%m/%Y}", count=gap,
                          window=window.interval_text(), cutoff=f"{window.end:%d/%m/%Y}")
            if result:
                key = "deadlines.error.art8_previous"
                raise DeadlineChainError(key, previous=result[-1].level,
                                         previous_deadline=f"{start:%d/%m/%Y}", **params)
            key = "deadlines.error.art8_cutoff"
            raise DeadlineChainError(key, **params)
        result.append(LevelDeadline(level, rule, nominal, calendar.next_working_day(nominal), gap))
    return result
