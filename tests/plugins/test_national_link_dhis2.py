"""DHIS2 data value sets through the code mapping (plugins/national_link/dhis2.py) and our periods as
DHIS2 and ADX name them (periods.py): the accepted report as a data value set; a value set with one
unmapped data element refused in the dry run with that element named; the round trip; a period
without a DHIS2 id (nine months) refused in words."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from core.api import BaocaoError
from core.db import db
from plugins.national_link import dhis2, periods
from plugins.national_link.codes import CodeMap, FileRefused, MappingGap
from plugins.national_link.periods import PeriodError
from tests.plugins.test_national_link_codes import (CONNECTOR, EN, JANUARY, accepted, app, figures_of,  # noqa: F401
                                                    log_in, post, world)
from tests.plugins.test_national_link_adx import apply_fields, upload

VALUE_SET = {"dataSet": "DS_DAN_SO", "period": "202601", "orgUnit": "OU_GIOLINH", "dataValues": [
    {"dataElement": "DE_DAN_SO", "categoryOptionCombo": "HllvX50cXC0", "value": "10230"},
    {"dataElement": "DE_DAN_SO", "categoryOptionCombo": "SEX_M", "value": "5000"},
    {"dataElement": "DE_DAN_SO", "categoryOptionCombo": "SEX_F", "value": "5230"},
    {"dataElement": "DE_LUA", "value": 120.5}]}


def dry_run(document) -> object:
    with db.connection_context():
        return dhis2.dry_run(CONNECTOR, json.dumps(document).encode())


# -- periods ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("period, interval, dhis2_id", [
    (("monthly", 2026, 1), "2025-12-15/P1M", "202601"),
    (("monthly", 2026, 12), "2026-11-15/P1M", "202612"),
    (("quarterly", 2026, 2), "2026-03-15/P3M", "2026Q2"),
    (("half_year", 2026, 1), "2025-12-15/P6M", "2026S1"),
    (("half_year", 2026, 2), "2026-06-15/P6M", "2026S2"),
    (("annual", 2026, 1), "2025-12-15/P1Y", "2026"),
])
def test_a_period_goes_both_ways_as_its_window_and_by_its_name(period, interval, dhis2_id):
    assert periods.adx_interval(*period) == interval and periods.parse_adx(interval) == period
    assert periods.dhis2_period(*period) == dhis2_id and periods.parse_dhis2(dhis2_id) == period


@pytest.mark.parametrize("calendar, period", [
    ("2026-01-01/P1M", ("monthly", 2026, 1)), ("2026-04-01/P3M", ("quarterly", 2026, 2)),
    ("2026-07-01/P6M", ("half_year", 2026, 2)), ("2026-01-01/P1Y", ("annual", 2026, 1)),
    ("2025-12-15/2026-01-14", ("monthly", 2026, 1)), ("2026-01-01/2026-03-31", ("quarterly", 2026, 1)),
])
def test_a_calendar_period_is_read_as_ours_of_the_same_name(calendar, period):
    assert periods.parse_adx(calendar) == period


@pytest.mark.parametrize("text", ["2026-02-01/P3M", "2026-01-15/P3M", "2026-01-02/P1M", "2026-01-01/P2M",
                                  "2026-01-01/P9M", "2026-01-01/P7D", "2026-01", "2025-12-15/P1M/P1M", ""])
def test_an_interval_that_is_not_one_of_our_periods_is_refused_with_its_value(text):
    with pytest.raises(PeriodError) as refused:
        periods.parse_adx(text)
    assert (refused.value.key, refused.value.params) == ("national_link.period.bad_adx", {"value": text})


def test_nine_months_has_its_window_in_adx_and_no_dhis2_id():
    assert periods.adx_interval("nine_months", 2026, 1) == "2025-12-15/P9M"
    assert periods.parse_adx("2025-12-15/P9M") == ("nine_months", 2026, 1)
    with pytest.raises(PeriodError) as refused:
        periods.dhis2_period("nine_months", 2026, 1)
    assert (refused.value.key, refused.value.params) == ("national_link.period.no_dhis2", {"year": 2026})
    for text in ("2026W1", "2026Q5", "202613", "2026AprilS1", "1800"):
        with pytest.raises(PeriodError):
            periods.parse_dhis2(text)


# -- export -------------------------------------------------------------------------------------------

def test_the_accepted_report_is_a_data_value_set(accepted):
    with db.connection_context():
        value_set = dhis2.value_set_for_report(CONNECTOR, accepted.report.id)
    assert value_set == {"dataSet": "DS_DAN_SO", "period": "202601", "orgUnit": "OU_GIOLINH",
                         "completeDate": "2026-01-10", "dataValues": [
        {"dataElement": "DE_DAN_SO", "period": "202601", "orgUnit": "OU_GIOLINH", "value": "10230"},
        {"dataElement": "DE_DAN_SO", "period": "202601", "orgUnit": "OU_GIOLINH", "categoryOptionCombo": "SEX_M",
         "value": "5000"},
        {"dataElement": "DE_DAN_SO", "period": "202601", "orgUnit": "OU_GIOLINH", "categoryOptionCombo": "SEX_F",
         "value": "5230"},
        {"dataElement": "DE_LUA", "period": "202601", "orgUnit": "OU_GIOLINH", "value": "120.5"}]}


def test_a_report_with_an_unmapped_code_is_not_sent_and_the_codes_are_named(accepted):
    with db.connection_context():
        CodeMap.delete().where((CodeMap.local_code == "NL0101") & (CodeMap.local_option == "Nam")).execute()
        CodeMap.delete().where(CodeMap.kind == "data_set").execute()
        with pytest.raises(MappingGap) as gap:
            dhis2.value_set_for_report(CONNECTOR, accepted.report.id)
        assert gap.value.codes == ["nl.thang", "NL0101 (Nam)"]
        other = accepted.regime.report_of(accepted.tree.communes[1])  # Cam Lộ's: not accepted
        with pytest.raises(BaocaoError) as refused:
            dhis2.value_set_for_report(CONNECTOR, other.id)
        assert refused.value.key == "national_link.dhis2.error.not_accepted"


# -- import -------------------------------------------------------------------------------------------

def test_a_value_set_with_one_unmapped_data_element_is_refused_in_the_dry_run_with_that_element_named(accepted,
                                                                                                       client):
    gio_linh = accepted.tree.communes[0]
    before = figures_of(gio_linh)
    document = json.loads(json.dumps(VALUE_SET))
    document["dataValues"][3]["dataElement"] = "DE_LUA_VU_DONG"  # not in the mapping
    document["dataValues"][0]["value"] = "99999"
    plan = dry_run(document)
    assert [(u.what, u.code, [p.message for p in u.places]) for u in plan.unmapped] == [
        ("data_element", "DE_LUA_VU_DONG", [("national_link.interop.place.value", {"value": 4})])]
    assert not plan.ok and len(plan.changes) == 1  # the change is shown; the import is refused all the same
    with db.connection_context():
        assert dhis2.apply(None, CONNECTOR, json.dumps(document).encode(), "x.json", plan.digest)[0] is None
    assert figures_of(gio_linh) == before

    for headers, words in ((None, "Phần tử dữ liệu"), (EN, "Data element")):
        page = upload(client, json.dumps(document).encode(), fmt="dhis2", headers=headers, name="dhis2.json")
        assert page.status_code == 422
        assert 'data-code="DE_LUA_VU_DONG"' in page.text and words in page.text
        assert "interop-apply-form" not in page.text
    assert "dataValue 4" in page.text


def test_a_data_value_set_exported_imports_back_unchanged_and_a_change_applies(accepted, client):
    gio_linh = accepted.tree.communes[0]
    with db.connection_context():
        exported = dhis2.dumps(dhis2.export(CONNECTOR, "nl.thang", [gio_linh.id], [JANUARY]))
    assert json.loads(exported) == {**VALUE_SET, "dataValues": [
        {"dataElement": "DE_DAN_SO", "period": "202601", "orgUnit": "OU_GIOLINH", "value": "10230"},
        {"dataElement": "DE_DAN_SO", "period": "202601", "orgUnit": "OU_GIOLINH", "categoryOptionCombo": "SEX_F",
         "value": "5230"},
        {"dataElement": "DE_DAN_SO", "period": "202601", "orgUnit": "OU_GIOLINH", "categoryOptionCombo": "SEX_M",
         "value": "5000"},
        {"dataElement": "DE_LUA", "period": "202601", "orgUnit": "OU_GIOLINH", "value": "120.5"}]}
    with db.connection_context():
        plan = dhis2.dry_run(CONNECTOR, exported)
    assert (plan.ok, plan.changes, plan.unchanged) == (True, [], 4)

    document = json.loads(json.dumps(VALUE_SET))  # the head's period and org unit; a number as a number
    document["dataValues"][3]["value"] = 130.25
    preview = upload(client, json.dumps(document).encode(), fmt="dhis2", name="dhis2.json")
    assert preview.status_code == 200 and "<del>120,5</del> → <ins>130,25</ins>" in preview.text
    response = post(client, "/p/national_link/interop/import/apply", apply_fields(preview.text))
    assert response.status_code == 303
    assert figures_of(gio_linh)[("NL0102", "")] == Decimal("130.25")


def test_the_screen_downloads_a_data_value_set_and_refuses_nine_months_in_words(accepted, client):
    from core.api import Figure, put_figures

    gio_linh = accepted.tree.communes[0]
    form = {"connector": CONNECTOR, "data_set": "nl.thang", "units": [str(gio_linh.id)], "frequency": "monthly",
            "year": "2026", "index": "1", "format": "dhis2"}
    response = post(client, "/p/national_link/interop/export", form)
    assert response.status_code == 200 and json.loads(response.content)["period"] == "202601"

    with db.connection_context():  # a nine-month figure: its window goes to ADX, DHIS2 has no such period
        put_figures([Figure("NL0102", gio_linh.id, "nine_months", 2026, 1, "actual", "900")], source="test")
        with pytest.raises(PeriodError) as refused:
            dhis2.export(CONNECTOR, "nl.thang", [gio_linh.id], [("nine_months", 2026, 1)])
    assert refused.value.key == "national_link.period.no_dhis2"
    for headers, words in ((None, "DHIS2 không có loại kỳ 9 tháng"), (EN, "DHIS2 has no nine-month period type")):
        nine = post(client, "/p/national_link/interop/export", {**form, "frequency": "nine_months"}, headers=headers)
        assert nine.status_code == 422 and words in nine.text
    adx_file = post(client, "/p/national_link/interop/export", {**form, "frequency": "nine_months", "format": "adx"})
    assert adx_file.status_code == 200 and b'period="2025-12-15/P9M"' in adx_file.content


def test_values_the_system_cannot_take_are_problems_with_their_places(accepted):
    document = {"dataSet": "DS_DAN_SO", "orgUnit": "OU_GIOLINH", "attributeOptionCombo": "PARTNER_A", "dataValues": [
        {"dataElement": "DE_LUA", "period": "2026W2", "value": "1"},
        {"dataElement": "DE_LUA", "period": "202601", "value": "1", "deleted": True},
        {"dataElement": "DE_LUA", "value": "1"},
        "not an object",
        {"dataElement": "DE_LUA", "period": "202602", "value": "một"},
        {"dataElement": "DE_LUA", "period": "202603", "value": "1"},
        {"dataElement": "DE_LUA", "period": "202603", "value": "2"},
        {"dataElement": "DE_LUA", "period": "202604", "categoryOptionCombo": ["SEX_M"], "value": "1"}]}
    plan = dry_run(document)
    assert [(p.place.value, p.key) for p in plan.problems] == [
        (None, "national_link.dhis2.error.attribute_combo"),
        (2, "national_link.dhis2.error.deleted"),
        (3, "national_link.dhis2.error.missing"),
        (4, "national_link.dhis2.error.not_object"),
        (8, "national_link.dhis2.error.not_text"),  # what reading the file found, then what mapping it found
        (1, "national_link.period.bad_dhis2"),
        (5, "national_link.interop.error.value"),
        (7, "national_link.interop.error.twice")]
    assert not plan.ok


@pytest.mark.parametrize("content, key", [
    (b"{not json", "national_link.dhis2.error.json"),
    (b'{"dataValues": NaN}', "national_link.dhis2.error.json"),
    (b'[{"dataElement": "DE_LUA"}]', "national_link.dhis2.error.not_value_set"),
    ('{"dataValues": []}'.encode("utf-16"), "national_link.interop.error.encoding"),
    (b" ", "national_link.interop.error.empty_file"),
])
def test_a_file_that_is_no_value_set_is_refused_whole(accepted, content, key):
    with pytest.raises(FileRefused) as refused:
        with db.connection_context():
            dhis2.dry_run(CONNECTOR, content)
    assert refused.value.key == key


def test_an_empty_value_set_says_so(accepted):
    (problem,) = dry_run({"dataValues": []}).problems
    assert problem.key == "national_link.interop.error.empty"
