"""The completeness screen ``/completeness`` (issue 14 item 3): the menu entry for receivers, the
regimes with their rates, a regime's period with the summary line, the numbers by level and the
units in plain words, filtered and sorted by query parameters (and as an htmx partial), the year
view, a unit's reports linking to the report pages, the Excel files (numbers as numbers,
Vietnamese headers), the same numbers over the JSON API and in the OpenAPI document, and 404 for
what the person may not see. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re

import pytest

from tests.core.test_completeness import CODE, MARCH, build_world
from tests.web.test_report_entry import log_in

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def world(client, frozen_clock, make_regime, unit_tree, make_user):
    return build_world(frozen_clock, make_regime, unit_tree, make_user)


def rows_of(html: str) -> list[tuple[str, str]]:
    """(unit code, state) of each unit row, in order."""
    return re.findall(r'<tr data-unit="([^"]+)" data-state="([^"]+)"', html)


def test_the_receiver_finds_the_page_in_the_menu_and_sees_the_regimes(client, world):
    log_in(client, world["users"]["receiver"])
    home = client.get("/")
    assert 'href="/completeness"' in home.text and "Tình hình gửi báo cáo" in home.text
    page = client.get("/completeness")
    assert page.status_code == 200
    assert f'data-regime="{CODE}"' in page.text and world["regime"].regime.name in page.text
    assert "Tháng 3 năm 2026" in page.text and "40,0%" in page.text and "20,0%" in page.text
    assert f'href="/completeness?regime={CODE}&amp;period=2026-02-15/2026-03-14"' in page.text


def test_a_commune_reporter_has_no_menu_entry_but_sees_its_own_unit(client, world):
    log_in(client, world["users"]["balong"])
    assert 'href="/completeness"' not in client.get("/").text
    page = client.get("/completeness", params={"regime": CODE})
    assert page.status_code == 200 and rows_of(page.text) == [("44.BALONG", "late")]
    assert "Đã gửi 1/1 báo cáo (100,0%)." in page.text


def test_a_period_the_summary_the_levels_and_the_units_in_plain_words(client, world):
    log_in(client, world["users"]["receiver"])
    page = client.get("/completeness", params={"regime": CODE})
    text = page.text
    assert page.status_code == 200 and "Tháng 3 năm 2026 (15/02/2026 – 14/03/2026)" in text
    assert "Hạn gửi: 17/03/2026." in text and "số liệu tính đến ngày 20/03/2026" in text
    assert "Đã gửi 2/5 báo cáo (40,0%)." in text and "Đúng hạn 1 (20,0%), trễ hạn 1." in text
    assert "Chưa gửi 2, bị trả lại 1; đã quá hạn mà chưa gửi 3." in text and "Đã chấp nhận 1." in text
    assert 'data-level="district"' in text and 'data-level="commune"' in text
    assert dict(rows_of(text)) == {"44.DAKRONG": "not_submitted", "44.BALONG": "late", "44.CAMLO": "returned",
                                   "44.GIOLINH": "accepted", "44.HUONGHIEP": "not_submitted"}
    for word in ("Trễ hạn", "Chưa gửi", "Đã chấp nhận", "Bị trả lại", "Quá hạn"):
        assert f">{word}</span>" in text, word
    for word, count in (("Tất cả", 5), ("Đúng hạn", 1), ("Trễ hạn", 1), ("Chưa gửi", 2), ("Quá hạn", 3),
                        ("Đã chấp nhận", 1), ("Bị trả lại", 1)):
        assert f'>{word} <span class="tab-count">{count}</span>' in text, word
    assert "(đã gửi đúng hạn)" in text  # the accepted and the returned ones say how they were sent
    report = world["reports"]["balong"]
    assert f'href="/reports/{report.id}"' in text
    assert f'href="/completeness/units/{world["units"]["balong"].id}?regime={CODE}&amp;year=2026"' in text
    # The place for the reminder button: the action bar of this regime and period.
    assert f'id="completeness-actions" data-regime="{CODE}" data-period="{MARCH}"' in text
    assert 'data-overdue="3"' in text
    assert "completeness." not in text  # no key shown instead of a message


def test_filter_by_status_level_and_name_sort_and_htmx(client, world):
    log_in(client, world["users"]["receiver"])
    overdue = client.get("/completeness", params={"regime": CODE, "status": "overdue"})
    assert sorted(code for code, _ in rows_of(overdue.text)) == ["44.CAMLO", "44.DAKRONG", "44.HUONGHIEP"]
    assert 'aria-current="page">Quá hạn <span class="tab-count">3</span>' in overdue.text
    late = client.get("/completeness", params={"regime": CODE, "status": "late"})
    assert rows_of(late.text) == [("44.BALONG", "late")]
    accepted = client.get("/completeness", params={"regime": CODE, "status": "accepted"})
    assert rows_of(accepted.text) == [("44.GIOLINH", "accepted")]
    district = client.get("/completeness", params={"regime": CODE, "level": "district"})
    assert [code for code, _ in rows_of(district.text)] == ["44.DAKRONG"]
    name = client.get("/completeness", params={"regime": CODE, "q": "ba long"})
    assert [code for code, _ in rows_of(name.text)] == ["44.BALONG"]
    by_status = client.get("/completeness", params={"regime": CODE, "sort": "status"})
    assert [code for code, _ in rows_of(by_status.text)] == ["44.DAKRONG", "44.HUONGHIEP", "44.CAMLO", "44.BALONG",
                                                            "44.GIOLINH"]
    assert 'aria-sort="ascending"' in by_status.text
    reversed_status = client.get("/completeness", params={"regime": CODE, "sort": "-status"})
    assert [code for code, _ in rows_of(reversed_status.text)][0] == "44.GIOLINH"
    partial = client.get("/completeness", params={"regime": CODE, "status": "returned"}, headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="completeness-units">') and "<html" not in partial.text
    assert rows_of(partial.text) == [("44.CAMLO", "returned")]
    # A bogus status or sort is ignored, not an error.
    assert len(rows_of(client.get("/completeness", params={"regime": CODE, "status": "x", "sort": "y"}).text)) == 5


def test_the_year_view_and_a_units_reports(client, world):
    log_in(client, world["users"]["receiver"])
    year = client.get("/completeness/year", params={"regime": CODE})
    assert year.status_code == 200 and "Tháng 3" in year.text and "Cả năm 2026" in year.text
    assert f'href="/completeness?regime={CODE}&amp;period=2026-02-15%2F2026-03-14"' in year.text
    assert f'href="/reports/{world["reports"]["gio"].id}"' in year.text
    assert "1/1" in year.text and "100,0%" in year.text and "0/1" in year.text
    assert 'id="completeness-actions"' in year.text and 'data-year="2026"' in year.text
    partial = client.get("/completeness/year", params={"regime": CODE, "level": "district"},
                         headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="completeness-year">') and "Huyện Đakrông" in partial.text
    assert "Xã Ba Lòng" not in partial.text
    unit = client.get(f"/completeness/units/{world['units']['cam'].id}", params={"regime": CODE, "year": "2026"})
    assert unit.status_code == 200 and "Xã Cam Lộ" in unit.text
    assert f'href="/reports/{world["reports"]["cam"].id}"' in unit.text and ">Bị trả lại</span>" in unit.text
    assert "Tháng 3 năm 2026" in unit.text


def test_what_one_may_not_see_is_a_404(client, world, make_user):
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        other = Unit.create(code="45", name="Tỉnh Khác", kind="province")
    outsider, _ = make_user(unit=other, roles=("receiver", "viewer"))
    log_in(client, outsider)
    page = client.get("/completeness")
    assert page.status_code == 200 and "Chưa có báo cáo nào trong phạm vi bạn được xem." in page.text
    for path, params in (("/completeness", {"regime": CODE}), ("/completeness/year", {"regime": CODE}),
                         ("/completeness/export.xlsx", {"regime": CODE}),
                         ("/completeness/year/export.xlsx", {"regime": CODE}),
                         (f"/completeness/units/{world['units']['gio'].id}", {}),
                         ("/completeness/units/999999", {})):
        assert client.get(path, params=params).status_code == 404, path
    answer = client.get(f"/api/v1/completeness/{CODE}")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/completeness").json()["total"] == 0
    # The receiver: a period that is not one of the regime's, or not a period at all, is a 404 too.
    log_in(client, world["users"]["receiver"])
    assert client.get("/completeness", params={"regime": CODE, "period": "2020-01-01/2020-01-31"}).status_code == 404
    assert client.get("/completeness", params={"regime": CODE, "period": "bogus"}).status_code == 404
    assert client.get("/completeness/year", params={"regime": CODE, "year": "2020"}).status_code == 404


def test_the_excel_files_have_vietnamese_headers_and_numbers_as_numbers(client, world):
    import openpyxl

    log_in(client, world["users"]["receiver"])
    answer = client.get("/completeness/export.xlsx", params={"regime": CODE})
    assert answer.status_code == 200 and answer.headers["content-type"] == XLSX
    assert 'filename="tinh-hinh-gui-bao-cao_test.monthly_2026-02-15_2026-03-14.xlsx"' in \
        answer.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    summary = [[c.value for c in row] for row in book["Tổng hợp"].iter_rows()]
    assert summary[0][0] == "Tình hình gửi báo cáo"
    total = next(row for row in summary if row[0] == "Tổng cộng")
    assert total[1:9] == [5, 2, 1, 1, 1, 2, 3, 1] and total[9] == pytest.approx(0.4)
    district = next(row for row in summary if row[0] == "Huyện (trước 01/07/2025)")
    assert district[1] == 1 and district[9] == 0
    units = [[c.value for c in row] for row in book["Đơn vị"].iter_rows()]
    assert units[0] == ["STT", "Mã đơn vị", "Đơn vị", "Cấp", "Hạn gửi", "Gửi lúc", "Tình trạng",
                        "Thời hạn lần gửi cuối", "Quá hạn chưa gửi"]
    assert {row[1]: row[6] for row in units[1:]} == {"44.DAKRONG": "Chưa gửi", "44.BALONG": "Trễ hạn",
                                                     "44.CAMLO": "Bị trả lại", "44.GIOLINH": "Đã chấp nhận",
                                                     "44.HUONGHIEP": "Chưa gửi"}
    balong = next(row for row in units if row[1] == "44.BALONG")
    assert balong[5].hour == 0 and balong[5].minute == 30  # sent at 00:30 Vietnam time, as a date-time
    year = client.get("/completeness/year/export.xlsx", params={"regime": CODE})
    assert year.status_code == 200 and year.headers["content-type"] == XLSX
    sheet = [[c.value for c in row] for row in openpyxl.load_workbook(io.BytesIO(year.content))["Đơn vị"].iter_rows()]
    assert sheet[0][:4] == ["Mã đơn vị", "Đơn vị", "Cấp", "Tháng 3"]
    gio = next(row for row in sheet if row[0] == "44.GIOLINH")
    assert gio[3] == "Đã chấp nhận" and gio[4:7] == [1, 1, 1] and gio[7] == 1


def test_the_same_numbers_over_the_api(client, world):
    log_in(client, world["users"]["receiver"])
    overview = client.get("/api/v1/completeness").json()
    assert overview["total"] == 1
    line = overview["items"][0]
    assert line["regime"]["code"] == CODE and line["period"]["key"] == MARCH
    assert line["counts"]["expected"] == 5 and line["rates"] == {"submitted": 40.0, "on_time": 20.0, "accepted": 20.0}
    period = client.get(f"/api/v1/completeness/{CODE}").json()
    assert period["as_of"] == "2026-03-20" and period["period"]["label"]["vi"] == "Tháng 3 năm 2026"
    assert period["counts"] == {"expected": 5, "on_time": 1, "late": 1, "not_submitted": 2, "overdue": 3,
                                "accepted": 1, "returned": 1, "submitted": 2}
    assert {level["kind"]: level["counts"]["expected"] for level in period["levels"]} == {"district": 1, "commune": 4}
    assert period["total"] == 5 and len(period["items"]) == 5
    balong = next(item for item in period["items"] if item["unit"]["code"] == "44.BALONG")
    assert (balong["state"], balong["timeliness"], balong["report"]) == ("late", "late", world["reports"]["balong"].id)
    assert balong["submitted_at"].startswith("2026-03-17T17:30")  # stored in UTC
    paged = client.get(f"/api/v1/completeness/{CODE}", params={"limit": 2, "offset": 4, "sort": "code"}).json()
    assert (paged["total"], paged["limit"], paged["offset"]) == (5, 2, 4) and len(paged["items"]) == 1
    overdue = client.get(f"/api/v1/completeness/{CODE}", params={"status": "overdue", "period": MARCH}).json()
    assert overdue["total"] == 3 and overdue["counts"]["expected"] == 5
    year = client.get(f"/api/v1/completeness/{CODE}/year", params={"year": 2026}).json()
    assert year["year"] == 2026 and [p["key"] for p in year["periods"]] == [MARCH]
    gio = next(item for item in year["items"] if item["unit"]["code"] == "44.GIOLINH")
    assert gio["reports"][MARCH]["state"] == "accepted" and gio["rates"]["submitted"] == 100.0
    bad = client.get(f"/api/v1/completeness/{CODE}", params={"status": "x", "period": "y", "limit": "0"})
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"status", "period", "limit"}
    assert client.get(f"/api/v1/completeness/{CODE}/year", params={"year": "20266"}).status_code == 400
    assert client.get("/api/v1/completeness/khong.co").status_code == 404


def test_the_api_endpoints_are_in_the_openapi_document(client, world):
    log_in(client, world["users"]["receiver"])
    doc = client.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/completeness", "/api/v1/completeness/{code}", "/api/v1/completeness/{code}/year"):
        assert path in doc["paths"], path
    op = doc["paths"]["/api/v1/completeness/{code}"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"code", "period", "status", "level", "limit", "offset"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/CompletenessPeriod")
    assert "CompletenessYear" in doc["components"]["schemas"]
    assert "/api/v1/completeness/{code}/year" in client.get("/api").text


@pytest.mark.parametrize("lang, title, word", [("vi", "Tình hình gửi báo cáo", "Trễ hạn"),
                                               ("en", "Reporting completeness", "Late")])
def test_the_pages_read_in_both_languages(client, world, lang, title, word):
    log_in(client, world["users"]["receiver"])
    headers = {"Accept-Language": lang}
    for path, params in (("/completeness", {}), ("/completeness", {"regime": CODE}),
                         ("/completeness/year", {"regime": CODE}),
                         (f"/completeness/units/{world['units']['balong'].id}", {})):
        page = client.get(path, params=params, headers=headers)
        assert page.status_code == 200 and title in page.text, path
        assert "completeness." not in page.text, path
    assert f">{word}</span>" in client.get("/completeness", params={"regime": CODE}, headers=headers).text


def test_a_page_of_100_units_costs_a_fixed_number_of_queries(client, frozen_clock, make_regime, unit_tree, make_user):
    from core.db import db
    from core.models import Unit
    from core.reporting.opening import Report
    from tests.core.test_completeness import OPENED
    from tests.web.test_autosave_queries import QueryCounter

    frozen_clock(OPENED)
    with db.connection_context():
        for n in range(98):  # with the kit's two, 100
            Unit.create(code=f"44.X{n:02d}", name=f"Xã Số {n:02d}", kind="commune", parent=unit_tree.province)
    issued = make_regime()
    receiver, _ = make_user(unit=unit_tree.department, roles=("receiver",))
    with db.connection_context():
        ids = [r.id for r in Report.select(Report.id).where(Report.regime == issued.regime.id).limit(40)]
        Report.update(status="submitted", submitted_at=OPENED).where(Report.id.in_(ids)).execute()
    log_in(client, receiver)
    client.get("/completeness", params={"regime": CODE})  # warm: templates compiled, session touched
    with QueryCounter(db.obj) as counter:
        counter.start()
        page = client.get("/completeness", params={"regime": CODE})
        statements = counter.stop()
    assert page.status_code == 200 and len(rows_of(page.text)) == 100
    # The session and the person's rights (with the roles a delegation in force gives: chuyen_nganh's hook
    # role_grants), then the page's own handful (the subtrees, the regimes to choose
    # from, the periods, the counts by level, the rows): eleven; the unusual values of the page's units
    # (core.reporting.quality.flag_counts: the rights, the reports, their forms, the level's values,
    # the history, the follow-ups) eight more. Never one per unit.
    assert len(statements) <= 19, "\n".join(statements)
