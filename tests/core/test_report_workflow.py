"""Submitting, returning, accepting and reopening a report (issue 6, first step): one transaction
per step, reasons required, blockers refuse, a double click submits once, each submission
freezes a version with canonical bytes and their SHA-256, late against the deadline. Runs on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from core.reporting import data as rd
from core.reporting import workflow as wf
from core.audit import AuditEvent
from core.errors import BaocaoError, Forbidden, NotFound
from core.reporting.opening import Report
from tests.fixtures.forms import form_world


@pytest.fixture
def w(db_session):
    return form_world()


def fill(w, banle="10", dulich="5", sections=True):
    cells = {("banle", "cur"): (rd.MISSING, banle), ("dulich", "cur"): (rd.MISSING, dulich)}
    text = {"ketqua": (rd.MISSING, "Bán lẻ tăng khá.")} if sections else {}
    return rd.save(w.p["reporter"], w.report.id, cells, text)


def test_submit_freezes_a_version_with_canonical_bytes(w):
    saved = fill(w)
    version = wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    report = Report.get_by_id(w.report.id)
    assert report.status == "submitted" and version.number == 1
    data = version.canonical.encode("utf-8")
    assert hashlib.sha256(data).hexdigest() == version.sha256
    content = json.loads(data)
    assert content["format"] == "baocao.report/1" and content["form"] == {"code": "BM-THANG", "version": 1}
    assert content["values"]["banle.cur"] == "10" and content["values"]["tong.cur"] == "15"
    assert content["sections"] == {"ketqua": "Bán lẻ tăng khá."}
    # Deterministic: sorted keys, no spaces.
    assert data == json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    # Nothing is edited once sent.
    with pytest.raises(BaocaoError):
        rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "11")})
    assert AuditEvent.select().where(AuditEvent.action == "report.submitted").count() == 1


def test_a_double_click_submits_once(w):
    saved = fill(w)
    first = wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    again = wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    assert again.id == first.id and wf.ReportVersion.select().count() == 1


def test_blockers_and_empty_required_sections_refuse_and_change_nothing(w):
    saved = fill(w, dulich="-1", sections=False)
    with pytest.raises(wf.SubmitRefused) as exc:
        wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    where = {cell for _, _, cell in exc.value.messages}
    assert where == {"dulich.cur", "section:ketqua"}
    assert Report.get_by_id(w.report.id).status == "draft" and not wf.ReportVersion.select().exists()


def test_return_with_a_reason_then_resubmit_makes_version_2_then_accept_and_reopen(w):
    wf.submit(w.p["reporter"], w.report.id, revision=fill(w).revision)
    with pytest.raises(BaocaoError) as exc:
        wf.return_report(w.p["issuer"], w.report.id, "  ")
    assert exc.value.key == "workflow.error.reason_required"
    wf.return_report(w.p["issuer"], w.report.id, "Doanh thu du lịch chưa khớp số của Sở")
    assert Report.get_by_id(w.report.id).status == "returned"
    saved = rd.save(w.p["reporter"], w.report.id, {("dulich", "cur"): (rd.MISSING, "6")})
    second = wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    assert second.number == 2
    with pytest.raises(Forbidden):  # the unit does not accept its own report
        wf.accept(w.p["reporter"], w.report.id)
    wf.accept(w.p["issuer"], w.report.id)
    with pytest.raises(BaocaoError) as exc:  # accepted: no second accept
        wf.accept(w.p["issuer"], w.report.id)
    assert exc.value.key == "workflow.error.wrong_state"
    wf.reopen(w.p["issuer"], w.report.id, "Cần bổ sung số liệu tháng")
    assert Report.get_by_id(w.report.id).status == "returned"
    assert [(e.action, e.version_number) for e in wf.events(w.report.id)] == [
        ("submit", 1), ("return", 1), ("submit", 2), ("accept", 2), ("reopen", 2)]
    assert [v.number for v in wf.versions(w.report.id)] == [2, 1]
    assert wf.events(w.report.id)[1].reason == "Doanh thu du lịch chưa khớp số của Sở"


def test_another_unit_cannot_see_or_act(w):
    with pytest.raises(NotFound):
        wf.submit(w.p["other"], w.report.id, revision=0)
    with pytest.raises(NotFound):
        wf.accept(w.p["other"], w.report.id)


def test_late_is_judged_by_the_day_in_vietnam(w):
    deadline = dt.date(2026, 3, 17)
    # 23:30 in Hà Nội on the deadline day is 16:30 UTC: on time; 00:30 the next day is late.
    assert not wf.is_late(dt.datetime(2026, 3, 17, 16, 30), deadline)
    assert wf.is_late(dt.datetime(2026, 3, 17, 17, 30), deadline)
    saved = fill(w)
    wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    report = Report.get_by_id(w.report.id)
    assert wf.timeliness(report) == ("late" if dt.date.today() > report.deadline else "on_time")


def test_an_accepted_report_s_figures_prefill_the_next_period(w):
    import datetime as dt
    from decimal import Decimal

    from core.catalogue.figures import IndicatorValue
    from core.reporting.opening import open_due_periods

    saved = fill(w, banle="10", dulich="5")
    wf.submit(w.p["reporter"], w.report.id, revision=saved.revision)
    assert IndicatorValue.select().count() == 0  # submitted is not yet accepted
    wf.accept(w.p["issuer"], w.report.id)
    stored = {(v.code, v.unit_id, v.frequency, v.year, v.index, v.kind, v.source): v.value
              for v in IndicatorValue.select()}
    # This month's figure of each indicator row (the column the year-to-date accumulates), nothing
    # else; and the province's consolidated figures, live since issue 14 (source "consolidation").
    assert stored == {("KX0301", w.u["aitu"].id, "monthly", 2026, 3, "actual", "report"): Decimal("10"),
                      ("KX0305", w.u["aitu"].id, "monthly", 2026, 3, "actual", "report"): Decimal("5"),
                      ("KX0301", w.u["province"].id, "monthly", 2026, 3, "actual", "consolidation"): Decimal("10"),
                      ("KX0305", w.u["province"].id, "monthly", 2026, 3, "actual", "consolidation"): Decimal("5")}
    open_due_periods(dt.date(2026, 4, 2), regime_ids=[w.regime.id])
    april = Report.get((Report.unit == w.u["aitu"]) & (Report.period_index == 4))
    sheet = rd.load_sheet(w.p["reporter"], april.id)
    assert sheet.values[("banle", "prev")] == Decimal("10") and sheet.values[("dulich", "prev")] == Decimal("5")
