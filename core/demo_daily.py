"""The demo's last month of reporting, so the daily screens of issue 14 have something to show: the
province's leader and their dashboard, last month's commune reports — most accepted, one waiting
for the planning department's review, three late — and an officer in each late commune to receive
the department's reminder ("Đôn đốc").

Demo data, not records of any real commune: the figures are the province's demo figures (the
kinhte_xahoi plugin's, source "demo") shared out among the communes, the narratives say they are
a demo, and the people are invented.

Last month is played back through the services at the times it happened (the clock stopped at each
moment): the commune regime issued when that month's window opened, each report filled and sent
before its deadline, and accepted on the deadline day; so every record agrees with the others —
each version's canonical bytes and time, "on time", the audit trail, the notifications and the
live consolidation, which makes the province's figure for that month the sum of what was accepted.
The reports are sent unsigned: the demo's signing keys exist only in the .p12 files
(``core.demo_pki``), and the communes with no account have no key at all.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from core import clock
from core.db import transaction
from core.models import Unit, User

REGIME = "kinhte_xahoi.monthly_commune"  # the demo's regime whose last month is played back
PROVINCE = "44"
RECEIVER = "sotaichinh"  # the planning department's officer, who accepts the communes' reports
SENDER = "quantri"  # sends the reports of the communes that have no account in the demo


@dataclass(frozen=True)
class Person:
    username: str
    full_name: str
    unit_name: str  # a current unit, by its name
    role: str  # message key describing what the account is for (the demo's list of logins)
    grants: tuple[str, ...]


LEADER = Person("lanhdaotinh", "Hoàng Văn Dũng", "Tỉnh Quảng Trị", "role.viewer", ("viewer",))
# Three communes that have not sent last month's report, each with its officer (none of the
# communes the other browser tests fill in: Đồng Hới, Cồn Cỏ, Gio Linh, Bắc Gianh, Ba Đồn, Vĩnh Linh).
LATE = (
    Person("xakhesanh", "Phan Thị Hạnh", "Xã Khe Sanh", "demo.role.commune", ("reporter",)),
    Person("xaminhhoa", "Đinh Văn Phúc", "Xã Minh Hóa", "demo.role.commune", ("reporter",)),
    Person("xacuatung", "Trương Thị Mai", "Xã Cửa Tùng", "demo.role.commune", ("reporter",)),
)
PEOPLE = (LEADER, *LATE)
WAITING = "Phường Đông Hà"  # sent on time, waiting for the department's review
# What the leader follows on the dashboard: indicators of the communes' monthly form first.
FOLLOWED = ("KX0601", "KX0401", "KX0403", "KX0701", "KX0301", "KX0101")
# Phường Đồng Hới's share of the province (the plugin's DEMO_COMMUNE_SHARE: its own past months).
DONG_HOI, DONG_HOI_SHARE = "Phường Đồng Hới", Decimal("0.08")
SECTIONS = {
    "ketqua": "Số liệu minh họa của bản chạy thử (demo): tình hình kinh tế - xã hội trong tháng ổn định, "
              "thu ngân sách và giải ngân vốn đầu tư công theo kế hoạch.",
    "hanche": "Số liệu minh họa (demo): một số công trình đầu tư công còn chậm giải phóng mặt bằng.",
    "nhiemvu": "Số liệu minh họa (demo): đẩy nhanh giải ngân vốn đầu tư công, chuẩn bị sản xuất vụ mới.",
}


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A moment of a day in the instance's time zone, as the clock is stopped at (aware)."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=clock.zone())


def last_closed_window(regime, calendar, today: dt.date):
    """(window, the communes' deadline) of the latest monthly window whose deadline has passed."""
    from core.regimes.periods import windows
    from core.reporting.opening import level_deadlines, level_for

    level = level_for(regime.rules, "commune")
    for year in (today.year, today.year - 1):
        for window in reversed(windows(regime.frequency, year)):
            if window.end >= today:
                continue
            deadlines = level_deadlines(regime, window, calendar)
            _, deadline = deadlines.get(level) or next(iter(deadlines.values()))
            if deadline < today:
                return window, deadline
    return None, None


def _shares(units: list[Unit]) -> dict[int, Decimal]:
    """Each commune's share of the province, the same on every run: Đồng Hới its plugin share, the
    others a stable random weight."""
    weights = {u.id: Decimal(str(round(random.Random(u.code).uniform(0.5, 1.5), 3))) for u in units
               if u.name != DONG_HOI}
    rest = sum(weights.values())
    shares = {uid: (1 - DONG_HOI_SHARE) * w / rest for uid, w in weights.items()}
    shares.update({u.id: DONG_HOI_SHARE for u in units if u.name == DONG_HOI})
    return shares


def _apportion(total: Decimal, shares: dict[int, Decimal], decimals: int) -> dict[int, Decimal]:
    """``total`` shared out by ``shares`` at ``decimals`` places, adding up to it exactly (the largest
    remainders get the last units)."""
    quantum = Decimal(1).scaleb(-decimals)
    exact = {uid: total * share for uid, share in shares.items()}
    parts = {uid: value.quantize(quantum, rounding=ROUND_DOWN) for uid, value in exact.items()}
    left = int((total.quantize(quantum, rounding=ROUND_DOWN) - sum(parts.values())) / quantum)
    for uid in sorted(exact, key=lambda u: (parts[u] - exact[u], u))[:max(left, 0)]:
        parts[uid] += quantum
    return parts


def _cells(form, window, units: list[Unit], province: Unit) -> dict[int, dict]:
    """unit id → {(row, "cur"): value}: the province's demo figures of the month shared out."""
    from core.catalogue import figures

    rows = [r for r in form.rows if r.kind == "indicator" and r.indicator]
    stored = {f.code: Decimal(str(f.value)) for f in figures.query(
        [r.indicator for r in rows], [province.id], [(window.frequency, window.year, window.index)])
        if f.value is not None}
    shares = _shares(units)
    cells: dict[int, dict] = {u.id: {} for u in units}
    for row in rows:
        if row.indicator not in stored:
            continue
        decimals = 0 if row.decimals == 0 else 1
        for uid, value in _apportion(stored[row.indicator], shares, decimals).items():
            cells[uid][(row.key, "cur")] = value
    return cells


def issue_day(regime, calendar, today: dt.date) -> dt.date:
    """The day the communes' regime is issued in the demo: when last month's window opened (today
    when no window has passed its deadline yet)."""
    window, _ = last_closed_window(regime, calendar, today)
    return window.start if window is not None else today


def issue_with_last_month(access, regime_id: int, calendar, today: dt.date) -> int:
    """Issue the communes' monthly regime as it was when last month's window opened, play that month
    back, then open the periods since. Returns the reports opened."""
    from core.regimes.regimes import Regime
    from core.reporting.opening import Report, issue_and_open, open_due_periods

    window, deadline = last_closed_window(Regime.get_by_id(regime_id), calendar, today)
    with clock.freeze(_at(window.start, 8)):
        _, opened = issue_and_open(access, regime_id, calendar=calendar, today=window.start)
    reports = list(Report.select(Report, Unit).join(Unit)
                   .where((Report.regime == regime_id) & (Report.period_start == window.start)
                          & (Report.period_end == window.end)).order_by(Unit.code))
    with transaction():  # one seed step: the month's hundreds of small steps commit once
        _play_month(reports, window, deadline, calendar)
    return opened.reports + open_due_periods(today, regime_ids=[regime_id], calendar=calendar).reports


def _office_moments(first: dt.date, deadline: dt.date, calendar, count: int) -> list[dt.datetime]:
    """``count`` moments spread evenly over office hours, from ``first`` to the deadline's morning."""
    spans = []
    for offset in range((deadline - first).days + 1):
        day = first + dt.timedelta(days=offset)
        if calendar.is_working_day(day):
            spans.append((_at(day, 8), _at(day, 11, 30)))
            if day < deadline:
                spans.append((_at(day, 13, 30), _at(day, 17)))
    total = sum((end - start for start, end in spans), dt.timedelta())
    moments = []
    for n in range(count):
        left = total * n / count  # office time elapsed before this one
        for start, end in spans:
            if left < end - start:
                moments.append((start + left).replace(second=0, microsecond=0))
                break
            left -= end - start
    return moments


def _senders(reports) -> dict[int, object]:
    """unit id → who sends its report: the commune's own demo officer, else the administrator, who
    typed in the reports of the communes that have no account in the demo."""
    from core.accounts.permissions import core_access

    admin = core_access(User.get(User.username == SENDER))
    officers = {}
    for user in User.select().where(User.unit.in_([r.unit_id for r in reports]) & ~User.is_admin).order_by(User.id):
        officers.setdefault(user.unit_id, core_access(user))
    return {r.unit_id: officers.get(r.unit_id, admin) for r in reports}


def _play_month(reports, window, deadline: dt.date, calendar) -> None:
    """Fill and send every commune's report of ``window`` but the late ones, then accept them all but
    the one waiting for review."""
    from core.accounts.permissions import core_access
    from core.regimes.forms import FormVersion
    from core.reporting import data as rd
    from core.reporting import workflow as wf
    from core.reporting.notifications import Notification

    late = {p.unit_name for p in LATE}
    sent = [r for r in reports if r.unit.name not in late]
    if not sent:
        return
    form = FormVersion.get_by_id(sent[0].form_version_id).compiled()
    cells = _cells(form, window, [r.unit for r in reports], Unit.get(Unit.code == PROVINCE))
    senders = _senders(sent)
    sections = {key: (rd.MISSING, text) for key, text in SECTIONS.items()}
    moments = _office_moments(window.end - dt.timedelta(days=3), deadline, calendar, len(sent))
    for report, moment in zip(sent, moments):
        with clock.freeze(moment):
            values = {cell: (rd.MISSING, value) for cell, value in cells[report.unit_id].items()}
            saved = rd.save(senders[report.unit_id], report.id, values, sections)
            wf.submit(senders[report.unit_id], report.id, revision=saved.revision)
    receiver = core_access(User.get(User.username == RECEIVER))
    accepted = [r for r in sent if r.unit.name != WAITING]
    start = _at(deadline, 13, 30)  # the deadline's afternoon, after the last report came in
    for n, report in enumerate(accepted):
        with clock.freeze(start + n * dt.timedelta(minutes=2)):
            wf.accept(receiver, report.id)
    # Last month's news was read when it came; only the report still waiting is news to the department.
    (Notification.update(read_at=Notification.created_at)
     .where(Notification.report.in_([r.id for r in accepted]) & Notification.read_at.is_null()).execute())


def follow_indicators() -> None:
    """The leader follows the communes' indicators on the dashboard (what they chose, in the demo)."""
    from core import dashboard

    leader = User.get_or_none(User.username == LEADER.username)
    if leader is not None:
        dashboard.choose(leader.id, list(FOLLOWED))
