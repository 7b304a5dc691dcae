"""The reviewer's data quality screens (issue 14 item 9): on the review page a value far from the
unit's history or from its peers is marked beside its cell with the expected range in the reader's
number format, a usual one is not; the receiver marks a value for follow-up with a note, finds it
on "Số liệu cần theo dõi" with a link to its report and cell, and clears it (both audited); another
receiver neither sees it nor clears it (404); the review page costs the same number of queries for
2 cells as for 30. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from core.api import Figure, put_figures
from core.audit import AuditEvent
from core.db import db
from core.reporting import quality as q
from tests.core.test_quality import MARCH, send, world  # noqa: F401 — the fixture
from tests.web.test_autosave_queries import QueryCounter
from tests.web.test_report_entry import log_in


def review(client, report_id, **params):
    page = client.get(f"/reports/{report_id}/review", params=params)
    assert page.status_code == 200, page.text[:500]
    return page.text


def cell_html(page: str, key: str) -> str:
    return page.split(f'data-cell="{key}">', 1)[1].split("</td>", 1)[0]


def test_the_review_page_marks_a_value_far_from_its_history_with_the_range(client, world):
    gio = world["tree"].communes[0]
    report = send(world, gio, lua="12000", ngo="305", as_user=world["users"]["gio"])
    log_in(client, world["users"]["receiver"])
    page = review(client, report.id)
    lua = cell_html(page, "lua.cur")
    assert lua.startswith("12.000,0<") and 'data-flag="lua.cur"' in lua
    assert "Khác thường" in lua and "Thường: 1.020,0 – 1.380,0" in lua  # the Vietnamese way
    assert 'data-flag="ngo.cur"' not in page and "data-flag" not in cell_html(page, "ngo.cur")
    assert 'id="review-quality"' in page and "so với cùng kỳ 3 năm trước của đơn vị" in page
    assert 'id="cell-lua-cur"' in page and 'href="#cell-lua-cur"' in page
    client.cookies.set("baocao_lang", "en")
    english = review(client, report.id)
    assert "Usually: 1,020.0 – 1,380.0" in cell_html(english, "lua.cur")


def test_a_short_history_and_a_lone_commune_mark_nothing(client, world):
    cam = world["tree"].communes[1]
    with db.connection_context():
        report = world["regime"].report_of(cam)
        put_figures([Figure("KB0101", cam.id, "monthly", report.year - 1, report.period_index, "actual", "10")],
                    source="test")
    send(world, cam, lua="5000")
    log_in(client, world["users"]["receiver"])
    page = review(client, report.id)
    assert "data-flag" not in page
    assert "Chưa đủ số liệu các kỳ trước hoặc của các đơn vị cùng cấp để so sánh." in page


def test_the_review_page_marks_a_value_far_from_the_units_of_its_level(client, world):
    communes = world["communes"]
    for unit, ngo in zip(communes[:7], ("300", "310", "290", "305", "295", "320", "280")):
        send(world, unit, lua="1100", ngo=ngo, as_user=world["users"]["gio"] if unit is communes[0] else None)
    wild = send(world, communes[7], lua="1000", ngo="4500")
    log_in(client, world["users"]["receiver"])
    page = review(client, wild.id)
    ngo = cell_html(page, "ngo.cur")
    assert 'data-expected="peers"' in ngo and 'data-expected="history"' not in ngo
    # The seven others, 280 – 320: median 300, MAD 10, s = max(14.826, 5 % of 300) = 15 → 300 ± 45.
    assert "Cùng cấp: 255,0 – 345,0" in ngo, ngo
    assert "so với 7 đơn vị cùng cấp (Xã, phường, đặc khu) đã gửi kỳ này" in page
    assert "data-flag" not in cell_html(page, "lua.cur")


def test_mark_list_and_clear_a_follow_up(client, world):
    gio = world["tree"].communes[0]
    report = send(world, gio, lua="12000", as_user=world["users"]["gio"])
    token = log_in(client, world["users"]["receiver"])
    page = review(client, report.id)
    assert f'action="/reports/{report.id}/followups"' in page
    answer = client.post(f"/reports/{report.id}/followups", follow_redirects=False,
                         data={"csrf_token": token, "cell": "lua.cur", "note": "Gấp 10 lần cùng kỳ, hỏi lại xã"})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/reports/{report.id}/review?done=marked#review-quality"
    page = review(client, report.id, done="marked")
    assert "Đã đánh dấu số liệu cần theo dõi." in page
    assert 'data-followup="lua.cur"' in cell_html(page, "lua.cur") and "Đang theo dõi" in page
    assert "Gấp 10 lần cùng kỳ, hỏi lại xã" in page
    home = client.get("/").text
    assert 'href="/followups"' in home and "Số liệu cần theo dõi" in home  # the menu
    listing = client.get("/followups")
    assert listing.status_code == 200
    assert "Xã Gio Linh" in listing.text and "Gấp 10 lần cùng kỳ, hỏi lại xã" in listing.text
    assert f'href="/reports/{report.id}/review#cell-lua-cur">1. Lúa — Thực hiện tháng 3/2026</a>' in listing.text
    assert "12.000,0" in listing.text and "Các kỳ trước: 1.020,0 – 1.380,0" in listing.text
    with db.connection_context():
        followup = q.Followup.get(q.Followup.report == report.id)
    cleared = client.post(f"/followups/{followup.id}/clear", follow_redirects=False,
                          data={"csrf_token": token, "note": "Xã nhập nhầm, đã sửa"})
    assert cleared.status_code == 303 and cleared.headers["location"] == "/followups?done=cleared"
    after = client.get("/followups?done=cleared").text
    assert "Đã bỏ theo dõi số liệu." in after and "Không có số liệu nào đang cần theo dõi." in after
    history = client.get("/followups?state=cleared").text
    assert "Xã nhập nhầm, đã sửa" in history and f'id="followup-{followup.id}"' in history
    again = client.post(f"/followups/{followup.id}/clear", data={"csrf_token": token})
    assert again.status_code == 409 and "Số liệu này đã được người khác bỏ theo dõi rồi." in again.text
    with db.connection_context():
        actions = [e.action for e in AuditEvent.select().where(AuditEvent.action.startswith("followup."))]
    assert actions == ["followup.marked", "followup.cleared"]
    assert "data-followup" not in cell_html(review(client, report.id), "lua.cur")


def test_clear_from_the_review_page_goes_back_to_it(client, world):
    gio = world["tree"].communes[0]
    report = send(world, gio, lua="12000", as_user=world["users"]["gio"])
    token = log_in(client, world["users"]["receiver"])
    with db.connection_context():
        from core.accounts.permissions import core_access
        from core.models import User

        followup = q.mark(core_access(User.get_by_id(world["users"]["receiver"].id)), report.id, "ngo.cur", "")
    page = review(client, report.id)
    assert f'action="/followups/{followup.id}/clear"' in page
    answer = client.post(f"/followups/{followup.id}/clear", follow_redirects=False,
                         data={"csrf_token": token, "back": "review"})
    assert answer.headers["location"] == f"/reports/{report.id}/review?done=cleared#review-quality"
    assert "Đã bỏ theo dõi số liệu." in review(client, report.id, done="cleared")


def test_a_refused_mark_keeps_what_was_typed(client, world):
    gio = world["tree"].communes[0]
    report = send(world, gio, lua="1200", as_user=world["users"]["gio"])
    token = log_in(client, world["users"]["receiver"])
    answer = client.post(f"/reports/{report.id}/followups",
                         data={"csrf_token": token, "cell": "", "note": "Xem lại số ngô"})
    assert answer.status_code == 422
    assert "Chọn một ô có số liệu trong báo cáo." in answer.text and "Xem lại số ngô</textarea>" in answer.text
    long = client.post(f"/reports/{report.id}/followups",
                       data={"csrf_token": token, "cell": "ngo.cur", "note": "x" * 1001})
    assert long.status_code == 422 and "Ghi chú dài quá 1000 ký tự" in long.text
    assert '<option value="ngo.cur" selected>' in long.text
    with db.connection_context():
        assert q.Followup.select().count() == 0


def test_another_receiver_neither_sees_nor_clears_a_follow_up(client, world):
    gio = world["tree"].communes[0]
    report = send(world, gio, lua="12000", as_user=world["users"]["gio"])
    token = log_in(client, world["users"]["receiver"])
    client.post(f"/reports/{report.id}/followups", data={"csrf_token": token, "cell": "lua.cur", "note": "Kiểm tra"})
    with db.connection_context():
        followup = q.Followup.get(q.Followup.report == report.id)
    token = log_in(client, world["users"]["other"])
    listing = client.get("/followups")
    assert listing.status_code == 200 and "Xã Gio Linh" not in listing.text
    assert "Không có số liệu nào đang cần theo dõi." in listing.text
    assert client.post(f"/followups/{followup.id}/clear", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/reports/{report.id}/followups",
                       data={"csrf_token": token, "cell": "ngo.cur"}).status_code == 404
    assert client.get(f"/reports/{report.id}/review").status_code == 404
    token = log_in(client, world["users"]["gio"])  # the unit reads its report, it does not review it
    assert client.get("/followups").status_code == 403
    assert client.post(f"/followups/{followup.id}/clear", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/reports/{report.id}/followups",
                       data={"csrf_token": token, "cell": "ngo.cur"}).status_code == 403
    with db.connection_context():
        assert q.Followup.get_by_id(followup.id).cleared_at is None


# -- the cost of the review page ---------------------------------------------------------------------

BIG_ROWS = 30


def big_regime(make_regime):
    """A second monthly regime for the same communes whose form has 30 indicator rows."""
    from core.catalogue import indicators

    with db.connection_context():
        indicators.save_group("KQ01", "Chỉ tiêu thử số lượng truy vấn", "commune")
        for n in range(1, BIG_ROWS + 1):
            indicators.save_indicator({"code": f"KQ01{n:02d}", "name": f"Chỉ tiêu {n}", "group": "KQ01",
                                       "levels": "commune", "unit_of_measure": "ha", "aggregation": "sum"})
    definition = {"title": "Biểu thử", "columns": [{"key": "cur", "kind": "input", "label": "Tháng {m}/{y}"}],
                  "rows": [{"key": f"c{n}", "kind": "indicator", "number": str(n), "label": f"Chỉ tiêu {n}",
                            "indicator": f"KQ01{n:02d}", "decimals": 1} for n in range(1, BIG_ROWS + 1)]}
    return make_regime(code="test.big", name="Báo cáo thử nhiều chỉ tiêu", definition=definition)


def send_cells(regime, unit, user, cells: dict):
    from core.accounts.permissions import core_access
    from core.models import User
    from core.reporting import data as rd
    from core.reporting import workflow as wf

    report = regime.report_of(unit)
    with db.connection_context():
        who = core_access(User.get_by_id(user.id))
        saved = rd.save(who, report.id, {tuple(k.split(".")): (rd.MISSING, v) for k, v in cells.items()})
        wf.submit(who, report.id, revision=saved.revision)
    return report


def counted_review(client, report_id) -> list[str]:
    with QueryCounter(db.obj) as counter:
        q._PEERS.clear()  # both pages read the peers' statistics (the heavier way)
        counter.start()
        page = client.get(f"/reports/{report_id}/review")
        statements = counter.stop()
    assert page.status_code == 200
    return statements, page.text


def test_the_review_pages_queries_do_not_grow_with_its_cells(client, world, make_regime):
    """Measured: 17 statements on SQLite and on PostgreSQL for the kit's 2 judged cells and for 30,
    with history, peers and a follow-up on each page; the quality checks are 4 of them (history,
    the peers' fingerprint, the peers' statistics, the open follow-ups), 3 when the peers'
    statistics kept by the process are still good."""
    big = big_regime(make_regime)
    communes, gio_user = world["communes"], world["users"]["gio"]
    gio = communes[0]
    with db.connection_context():
        small_report = world["regime"].report_of(gio)
        year, index = small_report.year, small_report.period_index
        put_figures([Figure(f"KQ01{n:02d}", gio.id, "monthly", year - k, index, "actual", "100")
                     for n in range(1, BIG_ROWS + 1) for k in (1, 2, 3)], source="test")
    for unit in communes[1:6]:
        user = world["make_user"](unit=unit, roles=("reporter",))[0]
        send(world, unit, lua="1200", ngo="300", as_user=user)
        send_cells(big, unit, user, {f"c{n}.cur": "100" for n in range(1, BIG_ROWS + 1)})
    small = send(world, gio, lua="12000", ngo="3000", as_user=gio_user)
    large = send_cells(big, gio, gio_user, {f"c{n}.cur": "1000" for n in range(1, BIG_ROWS + 1)})
    token = log_in(client, world["users"]["receiver"])
    for report_id, cell in ((small.id, "lua.cur"), (large.id, "c1.cur")):  # an open follow-up on each
        client.post(f"/reports/{report_id}/followups", data={"csrf_token": token, "cell": cell, "note": "Kiểm tra"})
    few, few_page = counted_review(client, small.id)
    many, many_page = counted_review(client, large.id)
    assert few_page.count('class="cell-flag"') == 2 and many_page.count('class="cell-flag"') == BIG_ROWS
    listing = "\n".join(re.sub(r"\s+", " ", s)[:140] for s in many)
    assert len(many) == len(few), f"{len(few)} queries for 2 cells, {len(many)} for {BIG_ROWS}\n{listing}"
    quality = [s for s in many if "core_indicator_value" in s or "core_followup" in s or "percentile_cont" in s
               or "core_report_value" in s]
    assert len(quality) <= 4, "\n".join(quality)


def test_the_follow_up_lists_queries_do_not_grow_with_its_rows(client, world):
    communes = world["communes"]
    reports = [send(world, unit, lua="1200", ngo="300") for unit in communes[1:5]]
    token = log_in(client, world["users"]["receiver"])

    def listing_cost() -> tuple[int, str]:
        with QueryCounter(db.obj) as counter:
            counter.start()
            page = client.get("/followups")
            statements = counter.stop()
        assert page.status_code == 200
        return len(statements), page.text

    client.post(f"/reports/{reports[0].id}/followups", data={"csrf_token": token, "cell": "lua.cur", "note": "Một"})
    one, _ = listing_cost()
    for report in reports:
        for cell in ("ngo.cur", "tong.cur"):
            client.post(f"/reports/{report.id}/followups", data={"csrf_token": token, "cell": cell, "note": "Hai"})
    nine, page = listing_cost()
    assert page.count('data-followup="') == 9 and "Xã Hailang" in page and "Đang theo dõi (9)" in page
    assert nine == one


def test_the_completeness_page_counts_each_units_unusual_values_and_follow_ups(client, world):
    communes = world["communes"]
    for unit, lua in zip(communes[1:], ("950", "1000", "1100", "1050", "980", "1020", "990")):
        send(world, unit, lua=lua)
    gio = send(world, communes[0], lua="12000", ngo="9000", as_user=world["users"]["gio"])
    with db.connection_context():
        from core.accounts.permissions import core_access

        q.mark(core_access(world["users"]["receiver"]), gio.id, "ngo.cur", "Ngô tăng 30 lần")
    log_in(client, world["users"]["receiver"])
    page = client.get("/completeness", params={"regime": "test.monthly", "period": MARCH}).text
    row = page.split(f'data-unit="{communes[0].code}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-flags="2"' in row and "2 ô khác thường" in row and "1 cần theo dõi" in row
    assert f'href="/reports/{gio.id}/review"' in row  # one click to the values on the review page
    usual = page.split(f'data-unit="{communes[1].code}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-flags="0"' in usual and "ô khác thường" not in usual and "badge-warn" not in usual
