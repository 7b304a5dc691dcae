"""Forms (issue 5): a definition is checked as a whole with every problem pointing at its place,
compiled once, computed and validated; versions are drafted, published, replaced and copied, and
a regime cannot be issued with a form that has no published version. Runs on SQLite and
PostgreSQL (the storage tests)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from core.regimes import forms as fm
from core.regimes import regimes as rg
from core.audit import AuditEvent
from core.errors import BaocaoError, Forbidden, NotFound, ValidationError
from core.regimes.form_engine import (CellInputError, FormDesignError, canonical, check_definition, column_label,
                              compile_form, normalise, parse_number)
from tests.fixtures.forms import CAL, TODAY, definition, form_world

D = Decimal


def problems_of(d: dict) -> dict[str, str]:
    return {p.where: p.key for p in check_definition(normalise(d))}


def test_a_sound_definition_has_no_problem():
    assert check_definition(normalise(definition())) == []


def test_every_problem_points_at_its_place():
    d = definition()
    d["rows"][3]["formula"] = "banle + "  # unfinished
    d["columns"][4]["formula"] = "cur / nowhere * 100"  # unknown name
    d["rules"].append({"key": "R3", "severity": "error", "expression": "cur + 1"})  # not a condition
    d["rules"].append({"key": "R4", "severity": "fatal", "expression": "cur > 0"})  # unknown severity
    d["rows"].append({"key": "cur", "kind": "heading", "label": "Trùng mã"})  # a column's key
    found = problems_of(d)
    assert found == {"rows.tong.formula": "forms.error.expression",
                     "columns.ratio.formula": "forms.error.unknown_name",
                     "rules.R3": "forms.error.rule_not_bool", "rules.R4": "forms.error.severity",
                     "columns.cur": "forms.error.key_taken"}
    message = next(p for p in check_definition(normalise(d)) if p.where == "rows.tong.formula").message("vi")
    assert "ký tự" in message  # the position in the formula


def test_a_cycle_is_refused_at_one_of_its_cells():
    d = definition()
    d["rows"][3]["formula"] = "banle + dulich + tong2"
    d["rows"].append({"key": "tong2", "kind": "computed", "label": "Cộng 2", "formula": "tong * 2"})
    problems = check_definition(normalise(d))
    assert [p.key for p in problems] == ["forms.error.cycle"]
    assert problems[0].where.startswith("cell tong") and "tong2" in problems[0].message("en")
    with pytest.raises(FormDesignError):
        compile_form(normalise(d))


def test_formulas_never_run_python():
    d = definition()
    d["rows"][3]["formula"] = "__import__('os').system('true')"
    assert problems_of(d) == {"rows.tong.formula": "forms.error.expression"}


def test_columns_shown_only_in_some_periods_and_labels_per_period():
    form = compile_form(normalise(definition()))
    assert [c.key for c in form.visible_columns(5)] == ["prev", "cur", "ytd", "same", "ratio", "est6"]
    assert "est6" not in [c.key for c in form.visible_columns(6)]
    labels = [column_label(c, "monthly", 2026, 1) for c in form.visible_columns(1)]
    assert labels[:2] == ["Tháng 12/2025", "Thực hiện tháng 1/2026"]


def test_missing_values_and_division_by_zero_leave_cells_empty():
    form = compile_form(normalise(definition()))
    values = form.compute(3, {("banle", "cur"): D(10)}, {("banle", "same"): D(0)}, {})
    assert values[("banle", "ratio")] is None  # 10 / 0
    assert values[("tong", "cur")] is None  # dulich is empty
    assert values[("banle", "ytd")] == D(10)
    assert form.validate(3, values) == []  # rules over empty cells are not evaluated


@pytest.mark.parametrize("text, expected", [("1.234,5", "1234.5"), ("1234.5", "1234.5"), ("1.234.567", "1234567"),
                                            (" -12 ", "-12"), ("0,25", "0.25"), ("", None), ("1 234", "1234")])
def test_numbers_typed_the_vietnamese_way(text, expected):
    value = parse_number(text)
    assert (canonical(value) if value is not None else None) == expected


@pytest.mark.parametrize("text", ["abc", "1,2,3", "1e5", "12%", "--1", "1.2345678", "10000000000000000000"])
def test_what_is_not_a_number_is_refused(text):
    with pytest.raises(CellInputError) as exc:
        parse_number(text)
    assert exc.value.message("vi") != exc.value.message("en")


@pytest.fixture
def w(db_session):
    return form_world()


def test_publish_new_version_and_copy(w):
    editor = w.p["editor"]
    assert w.version.status == "published" and w.version.published_by_id == w.users["editor"].id
    with pytest.raises(BaocaoError) as exc:  # nothing to change in place once published
        fm.save_draft(editor, w.form.id, definition())
    assert exc.value.key == "forms.error.no_draft"
    draft = fm.new_version(editor, w.form.id)
    assert draft.version == 2 and draft.definition == w.version.definition
    assert fm.new_version(editor, w.form.id).id == draft.id  # one draft at a time
    stamp = fm.stamp(draft)
    changed = definition()
    changed["rows"].pop(0)
    fm.save_draft(editor, w.form.id, changed, expected=stamp)
    with pytest.raises(BaocaoError) as exc:  # saved meanwhile: the stale stamp is refused
        fm.save_draft(editor, w.form.id, definition(), expected=stamp)
    assert exc.value.key == "forms.error.stale_draft"
    copy_ = fm.copy_form(editor, w.form.id, "BM-THANG-2", "Bản sao")
    assert fm.draft_of(copy_).data()["rows"][0]["key"] == "banle"  # the latest version, i.e. the draft
    actions = [e.action for e in AuditEvent.select().where(AuditEvent.object_type == "form").order_by(AuditEvent.id)]
    assert actions[:3] == ["form.created", "form.draft_saved", "form.published"]
    assert "form.version_created" in actions and "form.copied" in actions


def test_an_unsound_draft_is_not_saved_and_nothing_changes(w):
    fm.new_version(w.p["editor"], w.form.id)
    before = fm.draft_of(w.form).definition
    bad = definition()
    bad["rows"][1]["indicator"] = "KX9999"
    with pytest.raises(FormDesignError) as exc:
        fm.save_draft(w.p["editor"], w.form.id, bad)
    assert [(p.where, p.key) for p in exc.value.problems] == [("rows.banle", "forms.error.indicator_unknown")]
    assert fm.draft_of(w.form).definition == before


def test_an_empty_draft_saves_but_does_not_publish(w):
    form = fm.create_form(w.p["editor"], "BM-MOI", "Biểu mới", w.u["stc"].id)
    with pytest.raises(FormDesignError) as exc:
        fm.publish(w.p["editor"], form.id)
    assert {p.key for p in exc.value.problems} == {"forms.error.no_rows", "forms.error.no_columns"}


def test_only_editors_at_the_owner_unit_design(w):
    with pytest.raises(NotFound):  # a form the commune may not see does not exist for it
        fm.new_version(w.p["reporter"], w.form.id)
    with pytest.raises(Forbidden):  # the department's viewer sees it but does not edit it
        fm.new_version(w.p["viewer"], w.form.id)
    with pytest.raises(Forbidden):
        fm.create_form(w.p["reporter"], "BM-X", "X", w.u["aitu"].id)
    with pytest.raises(ValidationError) as exc:
        fm.create_form(w.p["editor"], "bm thang", "", w.u["stc"].id)
    assert exc.value.errors == {"code": "forms.error.code", "name": "forms.error.name"}
    assert [f.code for f in fm.visible_forms(w.p["viewer"])] == ["BM-THANG"]
    assert fm.visible_forms(w.p["reporter"]) == []


def test_a_regime_with_an_unpublished_form_is_not_issued(db_session):
    w = form_world(publish=False)
    problems = rg.issue_problems(w.regime, CAL, TODAY)
    assert [p.key for p in problems] == ["regimes.error.form_unpublished"]
    with pytest.raises(ValidationError):
        rg.issue(w.p["issuer"], w.regime.id, calendar=CAL, today=TODAY)


def test_a_plugin_form_is_installed_once_and_never_overwritten(w):
    d = copy.deepcopy(definition())
    form = fm.install_form("PLUGIN-01", "Biểu của plugin", w.u["stc"].id, d, frequency="monthly")
    assert fm.latest_published(form.id).version == 1
    d["title"] = "Đổi"
    assert fm.install_form("PLUGIN-01", "Khác", w.u["stc"].id, d).id == form.id
    assert fm.latest_published(form.id).data()["title"] == definition()["title"]
