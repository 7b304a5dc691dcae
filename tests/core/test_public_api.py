"""The domain half of the public API for plugins (issue 13 item 8): the figures query across
indicators × units × periods × value kinds (one statement, bounded, refusing what it cannot answer),
a report's accepted version with its signature, and the API reference in docs/writing_plugins.md
naming every exported name. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

import core.api
import web.api
from core.api import FIGURES_MAX, FigureRow, FiguresQueryError, NotFound, accepted_version, figures
from core.catalogue import indicators as ind
from core.catalogue.figures import Figure, put_values
from core.db import db
from core.models import Unit
from core.reporting import workflow as wf
from core.reporting.opening import Report
from tests.fixtures.signing import fill, sign_p12, signed_world

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "writing_plugins.md"


@pytest.fixture
def store(db_session):
    ind.save_group("KX03", "Thương mại, dịch vụ, du lịch", "province")
    for code, name, value_type in (("KX0301", "Tổng mức bán lẻ", "number"), ("KX0305", "Doanh thu du lịch", "number"),
                                   ("KX0399", "Ghi chú", "text")):
        ind.save_indicator({"code": code, "name": name, "group": "KX03", "levels": "province",
                            "value_type": value_type})
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    a = Unit.create(code="AT", name="Xã Ái Tử", kind="commune", parent=province)
    b = Unit.create(code="CL", name="Xã Cam Lộ", kind="commune", parent=province)
    rows = []
    for unit in (a, b):
        for month in (1, 2, 3):
            rows.append(Figure("KX0301", unit.id, "monthly", 2026, month, "actual", Decimal(month * 10 + unit.id)))
            rows.append(Figure("KX0301", unit.id, "monthly", 2026, month, "plan", Decimal(100)))
        rows.append(Figure("KX0305", unit.id, "monthly", 2026, 1, "actual", "7.25"))
        rows.append(Figure("KX0305", unit.id, "monthly", 2026, 1, "actual", "3", option="quoc_te"))
        rows.append(Figure("KX0305", unit.id, "monthly", 2026, 1, "actual", "4.25", option="noi_dia"))
    rows.append(Figure("KX0399", a.id, "quarterly", 2026, 1, "actual", "Bán lẻ tăng khá"))
    rows.append(Figure("KX0301", a.id, "quarterly", 2026, 1, "actual", "999"))  # another frequency
    put_values(rows, source="test")
    return a, b


class Statements:
    """Counts the statements peewee runs (every one goes through ``execute_sql``)."""

    def __enter__(self):
        self.database = db.obj  # the proxy's database
        self.sql, self._original = [], self.database.execute_sql

        def execute_sql(sql, params=None, *args, **kwargs):
            self.sql.append(sql)
            return self._original(sql, params, *args, **kwargs)

        self.database.execute_sql = execute_sql
        return self

    def __exit__(self, *exc):
        del self.database.execute_sql  # the class's method again


def test_the_figures_of_codes_units_periods_and_kinds_come_in_one_statement_sorted(store):
    a, b = store
    months = [("monthly", 2026, m) for m in (2, 1)]
    with Statements() as counted:
        rows = figures(["KX0305", "KX0301"], [b.id, a.id], months, kinds=("actual", "plan"))
    assert len(counted.sql) == 1
    assert rows[0] == FigureRow("KX0301", a.id, "monthly", 2026, 1, "actual", "", Decimal(10 + a.id))
    assert [(r.code, r.unit_id, r.index, r.kind) for r in rows] == [
        ("KX0301", a.id, 1, "actual"), ("KX0301", a.id, 1, "plan"), ("KX0301", a.id, 2, "actual"),
        ("KX0301", a.id, 2, "plan"), ("KX0301", b.id, 1, "actual"), ("KX0301", b.id, 1, "plan"),
        ("KX0301", b.id, 2, "actual"), ("KX0301", b.id, 2, "plan"),
        ("KX0305", a.id, 1, "actual"), ("KX0305", b.id, 1, "actual")]  # totals only: option ""
    # Only the periods asked: not March, not the first quarter.
    assert {r.index for r in rows} == {1, 2} and {r.frequency for r in rows} == {"monthly"}
    # A text indicator's figure is its text.
    assert figures(["KX0399"], [a.id], [("quarterly", 2026, 1)]) == [
        FigureRow("KX0399", a.id, "quarterly", 2026, 1, "actual", "", "Bán lẻ tăng khá")]


def test_disaggregation_options_totals_all_or_a_list(store):
    a, _ = store
    january = [("monthly", 2026, 1)]
    assert [r.option for r in figures(["KX0305"], [a.id], january)] == [""]
    every = figures(["KX0305"], [a.id], january, options="all")
    assert [(r.option, r.value) for r in every] == [("", Decimal("7.25")), ("noi_dia", Decimal("4.25")),
                                                    ("quoc_te", Decimal("3"))]
    assert [r.option for r in figures(["KX0305"], [a.id], january, options=["quoc_te"])] == ["quoc_te"]
    assert [r.option for r in figures(["KX0305"], [a.id], january, options=["", "quoc_te"])] == ["", "quoc_te"]
    assert figures(["KX0305"], [a.id], january, options=[]) == []


@pytest.mark.parametrize("call, argument, words", [
    (lambda a: figures(["KX0301"], [a], [("monthly", 2026, 1)], kinds=["forecast"]), "kinds", "forecast"),
    (lambda a: figures(["KX0301"], [a], [("weekly", 2026, 1)]), "periods", "weekly"),
    (lambda a: figures(["KX0301"], [a], [("monthly", 2026, 13)]), "periods", "13"),
    (lambda a: figures(["KX0301"], [a], [("monthly", 2026)]), "periods", "2026"),
    (lambda a: figures("KX0301", [a], [("monthly", 2026, 1)]), "codes", "codes"),
    (lambda a: figures(["KX0301"], [a], [("monthly", 2026, 1)], kinds="actual"), "kinds", "kinds"),
    (lambda a: figures(["KX0301"], [a], [("monthly", 2026, 1)], options="every"), "options", "options"),
])
def test_a_question_the_store_cannot_answer_is_refused_by_name(store, call, argument, words):
    with Statements() as counted, pytest.raises(FiguresQueryError) as refused:
        call(store[0].id)
    assert counted.sql == []  # refused before any query
    assert set(refused.value.errors) == {argument}
    vi, en = refused.value.message("vi"), refused.value.message("en")
    assert words in en and vi != en and "{" not in vi + en


def test_a_question_larger_than_the_bound_is_refused_before_it_runs(store):
    a, b = store
    codes = [f"X{n:04d}" for n in range(FIGURES_MAX // 24 + 1)]  # × 2 units × 12 months > the bound
    months = [("monthly", 2026, m) for m in range(1, 13)]
    with Statements() as counted, pytest.raises(FiguresQueryError) as refused:
        figures(codes, [a.id, b.id], months)
    assert counted.sql == [] and refused.value.key == "figures.query.too_large"
    assert str(FIGURES_MAX) in refused.value.message("en").replace(",", "")
    # Just under it, it runs (one statement, whatever the lists hold).
    with Statements() as counted:
        assert figures(codes[:FIGURES_MAX // 24], [a.id, b.id], months) == []
    assert len(counted.sql) == 1


# -- a report's accepted version and its signature --------------------------------------------------

def test_a_reports_accepted_version_while_it_stands_accepted(db_session, settings):
    w = signed_world()
    w.settings = settings
    assert accepted_version(w.report.id) is None  # never sent
    sign_p12(w, revision=fill(w, "12").revision)
    assert accepted_version(w.report.id) is None  # sent, not accepted
    wf.accept(w.p["issuer"], w.report.id)
    version = accepted_version(w.report.id)
    assert (version.report_id, version.number, version.values["banle.cur"]) == (w.report.id, 1, "12")
    stored = wf.versions(w.report.id)[0]
    assert version.sha256 == stored.sha256 and version.canonical == stored.canonical.encode("utf-8")
    assert version.accepted_at >= version.submitted_at
    signature = version.signature
    assert signature.kind == "personal" and signature.signer_name == "Nguyễn Văn A"
    assert signature.status in ("valid", "indeterminate") and signature.cms[:1] == b"\x30"  # DER
    from core.signatures.cms import content_matches, parse

    assert content_matches(parse(signature.cms), version.canonical)  # the CMS covers exactly these bytes
    # The receiver and the reporter may read it; a reporter of another commune may not.
    assert accepted_version(w.report.id, access=w.p["issuer"]).number == 1
    with pytest.raises(NotFound):
        accepted_version(w.report.id, access=w.p["other"])
    # Reopened: no accepted version until accepted again.
    wf.reopen(w.p["issuer"], w.report.id, "Cần sửa số liệu bán lẻ")
    assert accepted_version(w.report.id) is None
    wf.submit(w.p["reporter"], w.report.id, revision=fill(w, "13").revision)
    wf.accept(w.p["issuer"], w.report.id)
    again = accepted_version(w.report.id)
    assert (again.number, again.values["banle.cur"], again.signature) == (2, "13", None)  # sent unsigned
    assert accepted_version(Report.select().count() + 1000) is None  # no such report


# -- the reference --------------------------------------------------------------------------------

def reference_section() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(r"^## API reference\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, "docs/writing_plugins.md has no '## API reference' section"
    return match.group(1)


@pytest.mark.parametrize("module", [core.api, web.api], ids=["core.api", "web.api"])
def test_every_exported_name_is_in_the_api_reference(module):
    section = reference_section()
    missing = [name for name in module.__all__ if f"`{name}`" not in section and f"`{name}(" not in section]
    assert missing == [], f"{module.__name__} exports names docs/writing_plugins.md does not list: {missing}"
