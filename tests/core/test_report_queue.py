"""The receiving unit's queue (issue 6): who sees which reports, the filters, the oldest submission
first, bulk accept with a report that changed state in between, and returning with comments on
cells as one transaction. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from core.reporting import data as rd
from core.reporting import queue as rq
from core.reporting import workflow as wf
from core.accounts.access import Grant, Role
from core.audit import AuditEvent
from core.errors import BaocaoError
from core.models import Unit
from core.reporting.opening import Report
from tests.fixtures.forms import access_of, form_world


@pytest.fixture
def w(db_session):
    return form_world()


def send(w, report, who, banle="10"):
    saved = rd.save(w.p[who], report.id, {("banle", "cur"): (rd.MISSING, banle), ("dulich", "cur"): (rd.MISSING, "5")},
                    {"ketqua": (rd.MISSING, "Bán lẻ tăng khá.")})
    return wf.submit(w.p[who], report.id, revision=saved.revision)


def ids(q):
    return [row.report.id for row in q.rows]


def test_the_receiver_sees_what_waits_oldest_first(w):
    assert rq.queue(w.p["issuer"]).rows == []  # nothing submitted yet
    send(w, w.other_report, "other")
    send(w, w.report, "reporter")
    q = rq.queue(w.p["issuer"])
    assert ids(q) == [w.other_report.id, w.report.id] and q.total == 2
    assert [row.version_number for row in q.rows] == [1, 1]
    assert q.counts["submitted"] == 2 and q.counts["not_started"] == 0
    assert q.regimes == [("KTXH.THANG", w.regime.name)]
    every = rq.queue(w.p["issuer"], rq.Filters(status=""))
    assert every.total == 2


def test_the_queue_is_paged_with_the_total(w, monkeypatch):
    send(w, w.other_report, "other")
    send(w, w.report, "reporter")
    monkeypatch.setattr(rq, "PAGE_SIZE", 1)
    first, second = (rq.queue(w.p["issuer"], rq.Filters(page=n)) for n in (1, 2))
    assert (ids(first), ids(second)) == ([w.other_report.id], [w.report.id])
    assert (first.total, first.pages) == (2, 2)


def test_nobody_else_sees_the_queue(w):
    send(w, w.report, "reporter")
    # The reporter of a commune receives nothing; neither does a viewer.
    assert rq.queue(w.p["reporter"]).rows == [] and rq.queue(w.p["viewer"]).total == 0
    # A receiver of another province sees nothing of this one.
    other = Unit.create(code="45", name="Tỉnh Khác", kind="province")
    from core.accounts import login as accounts

    user = accounts.create_user("nhan_khac", "Người nhận khác", accounts.random_password(), other)
    Grant.create(user=user, role=Role.get(Role.code == "receiver"), unit=other)
    assert rq.queue(access_of(user), rq.Filters(status="")).rows == []


def test_filters_by_unit_without_diacritics_period_regime_status_and_late(w):
    send(w, w.report, "reporter")
    issuer = w.p["issuer"]
    assert ids(rq.queue(issuer, rq.Filters(unit="ai tu"))) == [w.report.id]
    assert ids(rq.queue(issuer, rq.Filters(unit="cam lo"))) == []
    assert ids(rq.queue(issuer, rq.Filters(status="not_started", unit="CAM LỘ"))) == [w.other_report.id]
    assert ids(rq.queue(issuer, rq.Filters(unit="không có xã này"))) == []
    key = f"{w.report.period_start.isoformat()}/{w.report.period_end.isoformat()}"
    assert ids(rq.queue(issuer, rq.Filters(period=key))) == [w.report.id]
    assert ids(rq.queue(issuer, rq.Filters(period="2020-01-01/2020-01-31"))) == []
    assert ids(rq.queue(issuer, rq.Filters(regime="KTXH.THANG"))) == [w.report.id]
    assert ids(rq.queue(issuer, rq.Filters(regime="KHAC"))) == []
    # Late only: the commune that has not sent is overdue once the deadline has passed.
    after = w.other_report.deadline + dt.timedelta(days=1)
    late = rq.queue(issuer, rq.Filters(status="", late=True), today=after)
    expected = {w.other_report.id} | ({w.report.id} if Report.get_by_id(w.report.id).submitted_late else set())
    assert set(ids(late)) == expected
    before = w.other_report.deadline - dt.timedelta(days=1)
    assert w.other_report.id not in ids(rq.queue(issuer, rq.Filters(status="", late=True), today=before))


def test_filters_read_from_a_query_string():
    f = rq.Filters.from_params({"status": "bogus", "page": "x", "late": "1", "unit": "  Ái   Tử "})
    assert (f.status, f.page, f.late, f.unit) == ("submitted", 1, True, "Ái Tử")
    assert rq.Filters.from_params({"status": ""}).status == ""
    assert rq.Filters.from_params({}).params() == {"status": "submitted"}


def test_the_page_is_one_query_whatever_the_number_of_rows(w, db_session, monkeypatch):
    send(w, w.report, "reporter")
    send(w, w.other_report, "other")
    executed = []
    database = db_session.obj
    original = database.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        executed.append(sql)
        return original(sql, params, *args, **kwargs)

    monkeypatch.setattr(database, "execute_sql", counting)
    q = rq.queue(w.p["issuer"])
    for row in q.rows:  # what the table shows, read from the rows
        row.report.unit.name, row.report.regime.name, row.version_number
    monkeypatch.undo()
    assert len(q.rows) == 2
    # The rights (grants, subtree), the counts, the page, the regime and period choices: never per row.
    assert len(executed) <= 6, executed


def test_bulk_accept_accepts_each_and_names_the_one_that_changed(w):
    send(w, w.report, "reporter")
    send(w, w.other_report, "other")
    # A colleague returns Cam Lộ's report while the list is open.
    wf.return_report(w.p["issuer"], w.other_report.id, "Thiếu số liệu du lịch")
    result = rq.bulk_accept(w.p["issuer"], [w.report.id, w.other_report.id])
    assert result.accepted == [w.report.id]
    [refusal] = result.refused
    assert refusal.unit_name == "Xã Cam Lộ" and refusal.status == "returned"
    assert refusal.error.key == "workflow.error.wrong_state"
    assert Report.get_by_id(w.report.id).status == "accepted"
    assert Report.get_by_id(w.other_report.id).status == "returned"
    assert AuditEvent.select().where(AuditEvent.action == "report.accepted").count() == 1


def test_bulk_accept_refuses_what_the_person_may_not_touch(w):
    send(w, w.report, "reporter")
    result = rq.bulk_accept(w.p["reporter"], [w.report.id, 999999])
    assert result.accepted == []
    assert [r.unit_name for r in result.refused] == ["Xã Ái Tử", ""]  # an unknown id names nothing
    assert Report.get_by_id(w.report.id).status == "submitted"


def test_the_selection_is_capped_and_not_empty():
    assert rq.selected_ids(["3", "3", "x", "4"]) == [3, 4]
    with pytest.raises(BaocaoError) as exc:
        rq.selected_ids([])
    assert exc.value.key == "queue.error.none_selected"
    with pytest.raises(BaocaoError) as exc:
        rq.selected_ids([str(i) for i in range(1, rq.MAX_BULK + 2)])
    assert exc.value.key == "queue.error.too_many"


def comments(report):
    return sorted((c.row, c.column, c.text) for c in rd.ReportComment.select().where(rd.ReportComment.report == report.id))


def test_return_with_two_cell_comments(w):
    send(w, w.report, "reporter")
    rq.return_with_comments(w.p["issuer"], w.report.id, "Kiểm tra lại số liệu",
                            [("banle.cur", "Số này cao bất thường"), ("", ""), ("dulich.cur", "Thiếu khách lẻ")])
    assert Report.get_by_id(w.report.id).status == "returned"
    assert comments(w.report) == [("banle", "cur", "Số này cao bất thường"), ("dulich", "cur", "Thiếu khách lẻ")]
    # The unit reads them on its cells.
    sheet = rd.load_sheet(w.p["reporter"], w.report.id)
    assert [c.text for c in sheet.comments[("banle", "cur")]] == ["Số này cao bất thường"]
    assert wf.events(w.report.id)[-1].reason == "Kiểm tra lại số liệu"


def test_return_without_a_reason_or_with_an_unknown_cell_saves_nothing(w):
    send(w, w.report, "reporter")
    with pytest.raises(rq.ReturnRefused) as exc:
        rq.return_with_comments(w.p["issuer"], w.report.id, "  ", [("banle.cur", "Số này cao")])
    assert set(exc.value.errors) == {"reason"}
    with pytest.raises(rq.ReturnRefused) as exc:
        rq.return_with_comments(w.p["issuer"], w.report.id, "Lý do", [("banle.cur", "Được"), ("zz.cur", "Sai ô")])
    assert set(exc.value.errors) == {"comment.1"}
    assert comments(w.report) == [] and Report.get_by_id(w.report.id).status == "submitted"


def test_a_failure_in_the_middle_leaves_no_comment(w, monkeypatch):
    send(w, w.report, "reporter")
    calls = []
    real = rd.add_comment

    def second_fails(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise BaocaoError("report_data.error.comment_empty")
        return real(*args, **kwargs)

    monkeypatch.setattr(rd, "add_comment", second_fails)
    with pytest.raises(BaocaoError):
        rq.return_with_comments(w.p["issuer"], w.report.id, "Lý do",
                                [("banle.cur", "Một"), ("dulich.cur", "Hai")])
    assert len(calls) == 2
    assert comments(w.report) == [] and Report.get_by_id(w.report.id).status == "submitted"
    assert not AuditEvent.select().where(AuditEvent.action == "report.comment_added").exists()


def test_a_report_accepted_meanwhile_keeps_no_comment(w, monkeypatch):
    send(w, w.report, "reporter")
    real = wf.return_report

    def accepted_first(access, report_id, reason):
        wf.accept(w.p["issuer"], report_id)  # a colleague accepts between the comments and the return
        return real(access, report_id, reason)

    monkeypatch.setattr(wf, "return_report", accepted_first)
    with pytest.raises(BaocaoError) as exc:
        rq.return_with_comments(w.p["issuer"], w.report.id, "Lý do", [("banle.cur", "Một")])
    assert exc.value.key == "workflow.error.wrong_state"
    assert comments(w.report) == []


def test_the_queue_shows_each_signature_and_its_latest_check(db_session, make_settings):
    from core.signatures import signing
    from core.signatures import trust
    from tests.fixtures.pki import der
    from tests.fixtures.signing import fill, sign_p12, signed_world

    w = signed_world(crl=False)  # no CRL yet: the signature is undetermined
    w.settings = make_settings(require_signature=True)
    version = sign_p12(w, revision=fill(w).revision)
    send(w, w.other_report, "other")  # sent unsigned while signatures were not required
    signatures = {row.report.id: row.signature for row in rq.queue(w.p["issuer"]).rows}
    assert signatures == {w.report.id: "indeterminate", w.other_report.id: None}
    trust.upload_crl(w.admin, der(w.pki.crl(issuer=w.pki.root)))
    trust.upload_crl(w.admin, der(w.pki.crl()))
    signing.recheck(w.p["issuer"], signing.signature_of(version.id).id, settings=w.settings)
    signatures = {row.report.id: row.signature for row in rq.queue(w.p["issuer"]).rows}
    assert signatures[w.report.id] == "valid"
