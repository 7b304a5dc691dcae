"""Data quality for reviewers (issue 14 item 9, core.reporting.quality): values far from the unit's
own history (median and MAD over the same period of past years, else with the recent periods) or
from the units of the same level are flagged with their expected range; a short history flags
nothing; a receiver marks a value for follow-up with a note and clears it, both audited; another
receiver neither sees nor clears it; the counts per unit for a regime and period. Built with the
kit's fixtures (web/testing.py) and ``core.api.put_figures`` for the history. Runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from core.accounts.permissions import core_access
from core.api import Figure, put_figures
from core.audit import AuditEvent
from core.db import db
from core.errors import BaocaoError, Forbidden, NotFound
from core.models import Unit, User
from core.reporting import data as rd
from core.reporting import quality as q
from core.reporting import workflow as wf

OPENED = dt.datetime(2026, 3, 2, 3, 0)  # the kit's monthly regime opens March 2026 (15/02 – 14/03)
MARCH = "2026-02-15/2026-03-14"
CODE = "test.monthly"
EXTRA = ("HAILANG", "TRIEUPHONG", "VINHLINH", "CUAVIET", "HUONGHOA", "DAKRONG")


def access(user):
    return core_access(User.get_by_id(user.id))


# -- the rule, without a database ------------------------------------------------------------------

def test_the_expected_range_is_the_median_plus_or_minus_three_robust_spreads():
    spread = q.spread_of([90, 100, 110, 95, 105])
    assert (spread.median, spread.mad, spread.points) == (100, 5, 5)
    expected = q.expected_range(spread, minimum=3, basis="same_period", decimals=1)
    # s = 1.4826 × 5 = 7.413: 100 ± 22.239, widened outward to one decimal.
    assert (expected.low, expected.high, expected.median) == (Decimal("77.7"), Decimal("122.3"), Decimal("100.0"))
    assert expected.outside(Decimal("1000")) and expected.outside(Decimal("77.6"))
    assert not expected.outside(Decimal("100")) and not expected.outside(Decimal("122.3"))


def test_one_wild_reference_value_does_not_widen_the_range():
    expected = q.expected_range(q.spread_of([100, 102, 98, 101, 99, 5000]), minimum=3, basis="recent", decimals=0)
    assert expected.high == 116  # 100.5 ± 3 × 5.025; a mean and standard deviation would reach past 5,000
    assert expected.outside(Decimal("1000"))


def test_a_mad_of_zero_falls_back_to_the_mean_deviation_and_a_floor_of_the_median():
    same = q.expected_range(q.spread_of([100, 100, 100]), minimum=3, basis="same_period", decimals=0)
    assert (same.low, same.high) == (Decimal("85"), Decimal("115"))  # ±15 %: never a few percent
    assert not same.outside(Decimal("104")) and same.outside(Decimal("1000"))
    mostly = q.expected_range(q.spread_of([100, 100, 100, 100, 400]), minimum=3, basis="recent", decimals=0)
    # MAD 0, mean |x − m| = 60: s = 1.2533 × 60 = 75.2; 100 ± 225.6 (never below 0).
    assert (mostly.low, mostly.high) == (Decimal("0"), Decimal("326"))
    zeros = q.expected_range(q.spread_of([0, 0, 0]), minimum=3, basis="same_period", decimals=0)
    assert (zeros.low, zeros.high) == (0, 0) and zeros.outside(Decimal("5"))


def test_a_negative_reference_keeps_the_range_below_zero():
    expected = q.expected_range(q.spread_of([-10, 0, 10]), minimum=3, basis="recent", decimals=0)
    assert expected.low < 0


def test_too_few_reference_values_judge_nothing():
    assert q.expected_range(q.spread_of([100, 101]), minimum=3, basis="recent") is None
    assert q.expected_range(q.spread_of([]), minimum=3, basis="recent") is None
    assert q.expected_range(q.spread_of([1, 2, 3, 4]), minimum=5, basis="peers") is None


@pytest.mark.parametrize("values", [[5], [5, 7], [1, 2, 3, 4], [100, 100, 100, 100, 400, 7],
                                    [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], [0, 0, 0, 0, 3, 5, -2, 12000],
                                    [float(i * 37 % 101) for i in range(60)]])
def test_leaving_each_value_out_gives_the_spread_of_the_others(values):
    found = q.spreads_without_each(values)
    for i, spread in enumerate(found):
        others = values[:i] + values[i + 1:]
        expected = q.spread_of(others)
        if expected is None:
            assert spread is None
            continue
        assert (spread.points, spread.median, spread.mad, spread.smallest) == (
            expected.points, expected.median, expected.mad, expected.smallest)
        assert spread.mean_ad == pytest.approx(expected.mean_ad)


def test_the_history_is_the_same_period_of_past_years_and_the_periods_just_before():
    same, recent = q.history_periods("monthly", 2026, 2)
    assert same == [(2025, 2), (2024, 2), (2023, 2), (2022, 2), (2021, 2)]
    assert recent == [(2026, 1), (2025, 12), (2025, 11), (2025, 10), (2025, 9), (2025, 8)]
    assert q.history_periods("quarterly", 2026, 1)[1] == [(2025, 4), (2025, 3), (2025, 2)]
    assert q.history_periods("annual", 2026, 1) == ([(2025, 1), (2024, 1), (2023, 1), (2022, 1), (2021, 1)], [])
    assert q.history_periods("custom", 2026, 0) == ([], [])
    # Three past years of the same month: the season alone; fewer: the recent months join them.
    points = {(2025, 2): 100.0, (2024, 2): 110.0, (2023, 2): 90.0, (2026, 1): 5.0, (2025, 12): 5.0}
    assert q.history_expected(points, same, recent, 0).basis == "same_period"
    del points[(2023, 2)]
    fallback = q.history_expected(points, same, recent, 0)
    assert fallback.basis == "recent" and fallback.points == 4


# -- a regime, its reports and their history ---------------------------------------------------------

@pytest.fixture
def world(frozen_clock, make_regime, unit_tree, make_user):
    """Eight communes report monthly to the department (the kit's regime); Gio Linh has three past
    Marches of rice (lúa) around 1,200 ha and maize (ngô) around 300 ha in the figures store. A
    receiver at the department, another at a second department, and Gio Linh's reporter."""
    frozen_clock(OPENED)
    with db.connection_context():
        extra = [Unit.create(code=f"44.{code}", name=f"Xã {code.title()}", kind="commune", parent=unit_tree.province)
                 for code in EXTRA]
        health = Unit.create(code="44.SYT", name="Sở Y tế", kind="department", parent=unit_tree.province)
    issued = make_regime()
    gio, cam = unit_tree.communes
    users = {"receiver": make_user(unit=unit_tree.department, roles=("receiver",))[0],
             "colleague": make_user(unit=unit_tree.department, roles=("receiver",))[0],
             "other": make_user(unit=health, roles=("receiver",))[0],
             "gio": make_user(unit=gio, roles=("reporter",))[0]}
    with db.connection_context():
        report = issued.report_of(gio)
        year, index = report.year, report.period_index
        put_figures([Figure("KB0101", gio.id, "monthly", year - k, index, "actual", v)
                     for k, v in ((1, "1200"), (2, "1250"), (3, "1180"))]
                    + [Figure("KB0102", gio.id, "monthly", year - k, index, "actual", v)
                       for k, v in ((1, "300"), (2, "310"), (3, "295"))], source="test")
    return {"regime": issued, "tree": unit_tree, "users": users, "report": report, "extra": extra,
            "communes": [gio, cam, *extra], "make_user": make_user}


def send(world, unit, lua, ngo="300", *, as_user=None):
    """Fill and submit the unit's report of the period (as a new reporter of it when not given)."""
    report = world["regime"].report_of(unit)
    user = as_user or world["make_user"](unit=unit, roles=("reporter",))[0]
    with db.connection_context():
        who = access(user)
        saved = rd.save(who, report.id, {("lua", "cur"): (rd.MISSING, lua), ("ngo", "cur"): (rd.MISSING, ngo)})
        wf.submit(who, report.id, revision=saved.revision)
    return report


def quality_of(world, report_id):
    from core.regimes.forms import FormVersion
    from core.reporting.diff import content_of
    from core.reporting.versions import latest_version

    with db.connection_context():
        report = rd.get_report(access(world["users"]["receiver"]), report_id)
        version = latest_version(report.id)
        form = FormVersion.get_by_id(version.form_version_id).compiled()
        kind = Unit.get_by_id(report.unit_id).kind
        return q.review_quality(report, kind, form, content_of(version).get("values") or {})


def test_a_value_ten_times_its_history_is_flagged_with_its_range(world):
    gio = world["tree"].communes[0]
    report = send(world, gio, lua="12000", ngo="305", as_user=world["users"]["gio"])
    quality = quality_of(world, report.id)
    lua, ngo = quality.checks["lua.cur"], quality.checks["ngo.cur"]
    assert lua.flagged and lua.far_from_history and lua.value == Decimal("12000")
    # 1,180 / 1,200 / 1,250: median 1,200, MAD 20; 1.4826 × 20 is under the floor of 5 % of the
    # median, so s = 60: 1,200 ± 180, with the row's one decimal.
    assert (lua.history.low, lua.history.high, lua.history.basis, lua.history.points) == (
        Decimal("1020.0"), Decimal("1380.0"), "same_period", 3)
    assert not ngo.flagged and ngo.history is not None  # 305 ha of maize is what Gio Linh grows
    assert [c.key for c in quality.flags] == ["lua.cur"]
    assert lua.peers is None  # one commune has sent: no level to compare with yet
    assert quality.judged == 2 and quality.followups == {}


def test_a_short_history_does_not_flag(world):
    cam = world["tree"].communes[1]  # two past periods only
    with db.connection_context():
        report = world["regime"].report_of(cam)
        put_figures([Figure("KB0101", cam.id, "monthly", report.year - 1, report.period_index, "actual", "100"),
                     Figure("KB0101", cam.id, "monthly", report.year, report.period_index - 1, "actual", "100")],
                    source="test")
    send(world, cam, lua="100000")
    check = quality_of(world, report.id).checks["lua.cur"]
    assert check.history is None and not check.flagged


def test_a_value_far_from_the_units_of_its_level_is_flagged(world):
    communes = world["communes"]
    for unit, lua in zip(communes[1:], ("950", "1000", "1100", "1050", "980", "1020", "990")):
        send(world, unit, lua=lua)
    wild = send(world, communes[0], lua="1100", ngo="9000", as_user=world["users"]["gio"])
    quality = quality_of(world, wild.id)
    ngo, lua = quality.checks["ngo.cur"], quality.checks["lua.cur"]
    # The seven other communes grow 300 ha of maize (MAD 0, no deviation at all: the floor of 5 %
    # of the median), so 300 ± 45; 9,000 is far from its level, and from its own past.
    assert ngo.far_from_peers and ngo.peers.basis == "peers" and ngo.peers.points == 7
    assert (ngo.peers.low, ngo.peers.high) == (Decimal("255.0"), Decimal("345.0"))
    assert ngo.far_from_history
    assert not lua.flagged and lua.peers is not None
    normal = quality_of(world, world["regime"].report_of(communes[1]).id)
    assert not normal.flags  # 950 ha among 950 – 1,100


def test_the_peers_follow_a_new_submission(world):
    """The peers' statistics kept per process are read again when a report of the group changes."""
    communes = world["communes"]
    for unit in communes[1:7]:
        send(world, unit, lua="1000")
    target = send(world, communes[0], lua="1000", ngo="310", as_user=world["users"]["gio"])
    assert quality_of(world, target.id).checks["lua.cur"].peers.high == Decimal("1150.0")
    with db.connection_context():
        returned = world["regime"].report_of(communes[1])
        wf.return_report(access(world["users"]["receiver"]), returned.id, "Kiểm tra lại")
    assert quality_of(world, target.id).checks["lua.cur"].peers.points == 5  # still enough
    with db.connection_context():
        wf.return_report(access(world["users"]["receiver"]), world["regime"].report_of(communes[2]).id, "Sai")
    assert quality_of(world, target.id).checks["lua.cur"].peers is None  # 4 others left: too few
    send(world, communes[2], lua="5000")  # sent again, much larger
    peers = quality_of(world, target.id).checks["lua.cur"].peers
    assert peers is not None and peers.points == 5 and peers.high > Decimal("1150.0")


def test_the_database_computes_the_same_statistics_as_python(world):
    """PostgreSQL takes the medians with percentile_cont, SQLite hands the values to Python: the same."""
    values = ("950", "1000", "1100", "1050", "980", "1020", "990", "15000")
    for unit, lua in zip(world["communes"], values):
        send(world, unit, lua=lua)
    with db.connection_context():
        group = q._group(CODE, dt.date(2026, 2, 15), dt.date(2026, 3, 14))
        stats = q._read_peers(group, ["commune"], {("lua", "cur"), ("ngo", "cur")})
    python = q.spread_of(Decimal(v) for v in values)
    lua = stats[("commune", "lua", "cur")]
    assert lua.points == python.points == 8
    assert lua.median == pytest.approx(python.median) and lua.mad == pytest.approx(python.mad)
    assert lua.mean_ad == pytest.approx(python.mean_ad) and lua.smallest == pytest.approx(python.smallest)
    assert stats[("commune", "ngo", "cur")].mad == 0


# -- follow-ups ------------------------------------------------------------------------------------

def audit_events(action):
    with db.connection_context():
        return [(e.object_id, json.loads(e.details)) for e in
                AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id)]


def test_marking_and_clearing_a_value_is_audited(world):
    gio = world["tree"].communes[0]
    report = send(world, gio, lua="12000", as_user=world["users"]["gio"])
    receiver, colleague = world["users"]["receiver"], world["users"]["colleague"]
    with db.connection_context():
        followup = q.mark(access(receiver), report.id, "lua.cur", "  Gấp 10 lần năm trước, gọi điện hỏi lại xã. ")
        again = q.mark(access(colleague), report.id, "lua.cur", "Bấm hai lần")
        assert again.id == followup.id and again.note == "Gấp 10 lần năm trước, gọi điện hỏi lại xã."
        assert (followup.value, followup.history_low, followup.history_high) == (
            Decimal("12000"), Decimal("1020.0"), Decimal("1380.0"))
        assert followup.label == "1. Lúa — Thực hiện tháng 3/2026" and followup.version_number == 1
        listed = q.followups(access(colleague))
        assert [f.id for f in listed.rows] == [followup.id] and listed.counts == {"open": 1, "cleared": 0}
        assert listed.rows[0].report.unit.name == "Xã Gio Linh"
        q.clear(access(colleague), followup.id, "Xã nhập nhầm đơn vị, đã trả lại")
        with pytest.raises(BaocaoError) as refused:
            q.clear(access(receiver), followup.id)
        assert refused.value.key == "quality.error.already_cleared"
        assert q.followups(access(receiver)).rows == []
        cleared = q.followups(access(receiver), state="cleared")
        assert [f.clear_note for f in cleared.rows] == ["Xã nhập nhầm đơn vị, đã trả lại"]
        assert cleared.rows[0].clearer.id == colleague.id
        # A value followed up and cleared can be marked again: a new follow-up.
        assert q.mark(access(receiver), report.id, "lua.cur").id != followup.id
    assert audit_events("followup.marked")[0] == (str(report.id), {
        "cell": "lua.cur", "version": 1, "reason": "Gấp 10 lần năm trước, gọi điện hỏi lại xã."})
    assert len(audit_events("followup.marked")) == 2  # the second click marked nothing
    assert audit_events("followup.cleared") == [(str(report.id), {"cell": "lua.cur",
                                                                  "reason": "Xã nhập nhầm đơn vị, đã trả lại"})]


def test_another_receiver_neither_sees_nor_clears_a_follow_up(world):
    gio = world["tree"].communes[0]
    report = send(world, gio, lua="12000", as_user=world["users"]["gio"])
    with db.connection_context():
        followup = q.mark(access(world["users"]["receiver"]), report.id, "lua.cur", "Kiểm tra")
        other = access(world["users"]["other"])
        assert q.followups(other).rows == [] and q.followups(other).counts == {"open": 0, "cleared": 0}
        with pytest.raises(NotFound):
            q.clear(other, followup.id)
        with pytest.raises(NotFound):
            q.mark(other, report.id, "ngo.cur")
        with pytest.raises(Forbidden):  # the unit reads its report, it does not review it
            q.mark(access(world["users"]["gio"]), report.id, "ngo.cur")
        with pytest.raises(NotFound):
            q.clear(access(world["users"]["gio"]), followup.id)
        assert q.Followup.get_by_id(followup.id).cleared_at is None
        assert q.flag_counts(other, CODE, MARCH) == {}
    assert audit_events("followup.cleared") == []


def test_a_mark_is_refused_for_a_cell_without_a_value_or_a_long_note(world):
    gio = world["tree"].communes[0]
    report = send(world, gio, lua="1200", as_user=world["users"]["gio"])
    receiver = access(world["users"]["receiver"])
    with db.connection_context():
        for cell in ("", "lua.nope", "nope.cur"):
            with pytest.raises(BaocaoError) as refused:
                q.mark(receiver, report.id, cell)
            assert refused.value.key == "quality.error.unknown_cell"
        with pytest.raises(BaocaoError) as refused:
            q.mark(receiver, report.id, "lua.cur", "x" * (q.MAX_NOTE + 1))
        assert refused.value.key == "quality.error.note_too_long"
        # The computed total holds a value too: it can be followed up (it is not judged).
        assert q.mark(receiver, report.id, "tong.cur").history_low is None
        never = world["regime"].report_of(world["tree"].communes[1])
        with pytest.raises(BaocaoError) as refused:
            q.mark(receiver, never.id, "lua.cur")
        assert refused.value.key == "quality.error.never_sent"


def test_the_flags_of_a_regime_and_period_per_unit(world):
    communes = world["communes"]
    for unit, lua in zip(communes[1:], ("950", "1000", "1100", "1050", "980", "1020", "990")):
        send(world, unit, lua=lua)
    gio = send(world, communes[0], lua="12000", ngo="9000", as_user=world["users"]["gio"])
    receiver = access(world["users"]["receiver"])
    with db.connection_context():
        q.mark(receiver, gio.id, "ngo.cur", "Ngô tăng 30 lần")
        counts = q.flag_counts(receiver, CODE, MARCH)
        assert set(counts) == {u.id for u in communes}
        assert counts[communes[0].id] == q.UnitFlags(gio.id, communes[0].id, history=2, peers=2, flagged=2,
                                                     followups=1)
        assert all(counts[u.id].flagged == 0 and counts[u.id].followups == 0 for u in communes[1:])
        page = q.flag_counts(receiver, CODE, (dt.date(2026, 2, 15), dt.date(2026, 3, 14)),
                             unit_ids=[communes[0].id])
        assert list(page) == [communes[0].id] and page[communes[0].id].flagged == 2
        assert q.flag_counts(receiver, CODE, "2026-03-15/2026-04-14") == {}
        assert q.flag_counts(receiver, CODE, "not a period") == {}
        # The same judgement as the review page's, unit by unit.
        for unit in communes:
            shown = quality_of(world, world["regime"].report_of(unit).id)
            assert counts[unit.id].flagged == len(shown.flags), unit.name
            assert counts[unit.id].peers == sum(c.far_from_peers for c in shown.checks.values())
        # A unit reading its own report counts its flags, never the receivers' follow-ups.
        own = q.flag_counts(access(world["users"]["gio"]), CODE, MARCH)
        assert list(own) == [communes[0].id] and own[communes[0].id].flagged == 2
        assert own[communes[0].id].followups == 0
