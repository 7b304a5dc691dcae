"""A plugin's data files (core.plugin_data, docs/plugin_data.md): indicators CSV, forms JSON (with the
published JSON Schema, docs/form.schema.json) and regimes TOML. A good file loads; every kind of
mistake is named with its file and its place, in Vietnamese and English; nothing is written when a
file is wrong. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import types
from pathlib import Path

import jsonschema
import pytest

from core.api import PluginDataError, hookimpl, plugin_data
from core.catalogue.indicators import Indicator, IndicatorGroup
from core.models import Unit
from core.plugins import build_plugin_manager
from core.regimes import form_schema
from core.regimes.forms import Form
from core.regimes.regimes import RegimeSpec, Regime, load_plugin_regimes

ROOT = Path(__file__).resolve().parents[2]

INDICATORS = """\
STT,Mã số,Nhóm/tên chỉ tiêu,Phân tổ chủ yếu,Kỳ công bố,Cơ quan chịu trách nhiệm thu thập/tổng hợp,Mã số ở hệ thống cấp cao hơn,Đơn vị tính,Loại giá trị,Cách tổng hợp,Cấp
,NN01,Trồng trọt,,,,,,,,commune
1,NN0101,Diện tích lúa gieo cấy,,Tháng,Phòng Kinh tế xã,,ha,number,sum,"province,commune"
2,NN0102,Diện tích ngô gieo trồng,,Tháng,Phòng Kinh tế xã,,ha,number,sum,commune
"""

FORM = {
    "code": "NN-01-THANG", "name": "Biểu số 01/NN: Tiến độ gieo trồng", "frequency": "monthly",
    "title": "Biểu số 01/NN: Tiến độ gieo trồng hằng tháng",
    "rows": [
        {"key": "g_nn01", "kind": "heading", "number": "I", "label": "Trồng trọt"},
        {"key": "lua", "kind": "indicator", "number": "1", "indicator": "NN0101", "unit": "ha", "decimals": 1},
        {"key": "ngo", "kind": "indicator", "number": "2", "indicator": "NN0102", "unit": "ha", "decimals": 1},
        {"key": "tong", "kind": "computed", "label": "Cộng", "formula": "lua + ngo", "decimals": 1},
    ],
    "columns": [
        {"key": "prev", "kind": "prefill", "label": "Tháng {m-1}/{py}", "period": "previous"},
        {"key": "cur", "kind": "input", "label": "Tháng {m}/{y}"},
        {"key": "ytd", "kind": "computed", "label": "Lũy kế", "accumulate": "cur"},
        {"key": "ratio", "kind": "computed", "label": "So với tháng trước (%)", "formula": "cur / prev * 100",
         "percent": True},
    ],
    "greyed": ["g_nn01.cur"],
    "rules": [{"key": "KHONG_AM", "severity": "blocker", "expression": "cur >= 0",
               "message": {"vi": "{row}: không được âm.", "en": "{row}: cannot be negative."}}],
    "outline": [{"key": "ketqua", "title": "I. Kết quả", "required": True}],
}

REGIME = """\
code = "fx_agri.monthly"
type = "periodic"
name = "Báo cáo tiến độ gieo trồng hằng tháng"
content = "Diện tích gieo trồng trong tháng."
content_type = "both"
sending_methods = ["system"]
frequency = "monthly"
cutoff_rule = "decree"
outline = "I. Kết quả"
form = "NN-01-THANG"
guidance = "Nhập số liệu, ký số và gửi."

[units]
kinds = ["commune"]

[issuing_unit]
kind = "province"

[legal]
number = "12/2026/QĐ-UBND"
date = 2026-01-05
issuer = "Ủy ban nhân dân tỉnh"

[[deadline_rules]]
level = "Xã → Sở Nông nghiệp"
from_kind = "commune"
rule = "1wd"
"""


def package(tmp_path: Path, *, indicators: str = INDICATORS, forms: dict | None = None,
            regimes: dict | None = None) -> Path:
    """A plugin package folder with its data/ files; returns its __init__.py."""
    root = tmp_path / "fx_agri"
    (root / "data" / "forms").mkdir(parents=True)
    (root / "data" / "regimes").mkdir()
    (root / "__init__.py").write_text("")
    (root / "data" / "indicators.csv").write_text(indicators, encoding="utf-8")
    for name, document in (forms if forms is not None else {"nn_01.json": FORM}).items():
        text = document if isinstance(document, str) else json.dumps(document, ensure_ascii=False, indent=2)
        (root / "data" / "forms" / name).write_text(text, encoding="utf-8")
    for name, text in (regimes if regimes is not None else {"01_monthly.toml": REGIME}).items():
        (root / "data" / "regimes" / name).write_text(text, encoding="utf-8")
    return root / "__init__.py"


def only_problem(exc_info) -> object:
    (problem,) = exc_info.value.problems
    return problem


def assert_named_in_both_languages(problem, file: str, place: str) -> None:
    assert problem.file == file
    vi, en = problem.message("vi"), problem.message("en")
    assert vi.startswith(f"{file}: ") and en.startswith(f"{file}: ")
    assert place in vi and place in en
    assert vi != en  # a message in each language, not one text twice
    assert not re.search(r"\{[a-z_]+\}", vi + en)  # every parameter filled


# -- good files ------------------------------------------------------------------------------------

def test_good_files_load_as_the_core_specs(tmp_path, db_session):
    data = plugin_data("fx_agri", package(tmp_path))
    assert data.load_indicators() == 2
    assert Indicator.get(Indicator.code == "NN0101").levels == "province,commune"
    assert IndicatorGroup.get(IndicatorGroup.code == "NN01").level == "commune"
    assert data.load_indicators() == 0  # only what is missing
    (spec,) = data.regimes(preparing_unit_code="SNN")
    assert isinstance(spec, RegimeSpec)
    assert (spec.code, spec.regime_type, spec.frequency, spec.reporting_kinds, spec.sending_methods) == \
        ("fx_agri.monthly", "periodic", "monthly", ("commune",), ("system",))
    assert spec.deadline_rules == (("Xã → Sở Nông nghiệp", "commune", "1wd"),)
    assert (spec.legal_number, spec.legal_date, spec.preparing_unit_code) == \
        ("12/2026/QĐ-UBND", dt.date(2026, 1, 5), "SNN")
    assert spec.form["code"] == "NN-01-THANG" and spec.form["definition"]["rows"] == FORM["rows"]
    assert data.forms()["NN-01-THANG"]["frequency"] == "monthly"


def test_an_indicator_an_administrator_edited_is_not_loaded_again(tmp_path, db_session):
    from core.catalogue.indicators import current, save_indicator

    data = plugin_data("fx_agri", package(tmp_path))
    data.load_indicators()
    save_indicator({"code": "NN0101", "name": "Diện tích lúa (đã sửa)"})
    assert data.load_indicators() == 0 and current("NN0101").name == "Diện tích lúa (đã sửa)"


def test_a_plugin_loads_its_regime_and_form_through_its_hooks(tmp_path, settings, db_session):
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    plugin = types.ModuleType("fx_agri")
    data = plugin_data("fx_agri", package(tmp_path))
    plugin.register_regimes = hookimpl(lambda settings: data.regimes())
    data.load_indicators()
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[plugin], load_entrypoints=False)
    assert load_plugin_regimes(pm, settings) == {"fx_agri": ["fx_agri.monthly"]}
    regime = Regime.get(Regime.code == "fx_agri.monthly")
    assert regime.plugin == "fx_agri" and regime.issuing_unit_id == province.id
    assert regime.form.code == "NN-01-THANG"


# -- indicators: each mistake named with its line and column ------------------------------------------

GOOD_ROW = '1,NN0101,Diện tích lúa gieo cấy,,Tháng,Phòng Kinh tế xã,,ha,number,sum,"province,commune"'


@pytest.mark.parametrize("row, column, key", [
    (GOOD_ROW.replace("NN0101", "N0101"), "Mã số", "indicators.import.code_invalid"),
    (GOOD_ROW.replace("Diện tích lúa gieo cấy", ""), "Nhóm/tên chỉ tiêu", "indicators.import.name_required"),
    (GOOD_ROW.replace("number", "decimal"), "Loại giá trị", "indicators.import.choice"),
    (GOOD_ROW.replace(",sum,", ",total,"), "Cách tổng hợp", "indicators.import.choice"),
    (GOOD_ROW.replace('"province,commune"', "village"), "Cấp", "indicators.import.levels"),
    (GOOD_ROW.replace("NN0101", "NN0201"), "Mã số", "indicators.import.group_unknown"),
    (GOOD_ROW.replace("NN0101", "NN0102"), "Mã số", "indicators.import.code_duplicate"),
])
def test_each_indicator_mistake_is_named_with_its_line_and_column(tmp_path, db_session, row, column, key):
    text = INDICATORS.replace(GOOD_ROW, row)
    data = plugin_data("fx_agri", package(tmp_path, indicators=text))
    with pytest.raises(PluginDataError) as exc_info:
        data.load_indicators()
    problem = only_problem(exc_info)
    line = 3 + (key == "indicators.import.code_duplicate")  # a duplicate is named where it repeats
    assert (problem.line, problem.where, problem.key) == (line, column, key)
    assert_named_in_both_languages(problem, "data/indicators.csv", column)
    assert f"dòng {line}" in problem.message("vi") and f"line {line}" in problem.message("en")
    # Nothing written: not the group, not the good row.
    assert not IndicatorGroup.select().where(IndicatorGroup.code == "NN01").exists()
    assert not Indicator.select().where(Indicator.code.startswith("NN")).exists()


def test_a_local_group_must_name_its_level(tmp_path, db_session):
    data = plugin_data("fx_agri", package(tmp_path, indicators=INDICATORS.replace(
        ",NN01,Trồng trọt,,,,,,,,commune", ",NN01,Trồng trọt,,,,,,,,")))
    with pytest.raises(PluginDataError) as exc_info:
        data.load_indicators()
    first = exc_info.value.problems[0]  # (then its indicators, whose group is not loaded)
    assert (first.line, first.where, first.key) == (2, "Cấp", "indicators.import.levels")


def test_the_official_importer_still_refuses_local_codes(db_session):
    from core.catalogue.indicators import parse_table

    plan = parse_table(INDICATORS.encode(), "bang.csv")
    assert {key for _, _, key, _ in plan.errors} == {"indicators.import.code_invalid"}


# -- forms: each mistake named with its JSON path ---------------------------------------------------

def _set(document: dict, path: str, value) -> dict:
    document = copy.deepcopy(document)
    *parents, last = path.replace("]", "").replace("[", ".").split(".")
    target = document
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return document


SHAPE_MISTAKES = [  # (where to change, new value, the place named, message key) — the schema's checks
    ("rows[1].kind", "total", "rows[1].kind", "plugin_data.schema.enum"),
    ("rows[1].decimals", "1", "rows[1].decimals", "plugin_data.schema.type.integer"),
    ("rows[1].decimals", 9, "rows[1].decimals", "plugin_data.schema.maximum"),
    ("rows[0].colour", "grey", "rows[0].colour", "plugin_data.schema.unknown"),
    ("columns[0].label", KeyError, "columns[0]", "plugin_data.schema.required"),
    ("columns[1].label", "", "columns[1].label", "plugin_data.schema.empty"),
    ("columns[2].key", "2ytd", "columns[2].key", "forms.error.key"),
    ("columns[3].percent", "yes", "columns[3].percent", "plugin_data.schema.type.boolean"),
    ("columns[0].periods", [5, 13], "columns[0].periods[1]", "plugin_data.schema.maximum"),
    ("rules[0].message", "không âm", "rules[0].message", "plugin_data.schema.type.object"),
    ("greyed[0]", "g_nn01", "greyed[0]", "plugin_data.schema.cell"),
    ("code", "nn 01", "code", "forms.error.code"),
    ("frequency", "weekly", "frequency", "plugin_data.schema.enum"),
    ("outline", {}, "outline", "plugin_data.schema.type.array"),
    ("rows[2].label", "x" * 501, "rows[2].label", "plugin_data.schema.too_long"),
]
MEANING_MISTAKES = [  # the engine's checks, once the shape is right
    ("rows[3].formula", "lua +", "rows[3].formula", "forms.error.expression"),
    ("rows[3].formula", "lua + dau", "rows[3].formula", "forms.error.unknown_name"),
    ("rows[3].formula", "lua > ngo", "rows[3].formula", "forms.error.formula_not_number"),
    ("rows[3].key", "lua", "rows[3]", "forms.error.key_taken"),
    ("rows[3].key", "sum", "rows[3]", "forms.error.key"),
    ("columns[3].formula", "cur / ratio", "columns[3].formula", "forms.error.cycle"),
    ("columns[2].accumulate", "nothing", "columns[2].accumulate", "forms.error.unknown_name"),
    ("rules[0].expression", "cur + 1", "rules[0]", "forms.error.rule_not_bool"),
    ("rules[0].rows", ["lua", "khoai"], "rules[0]", "forms.error.unknown_name"),
    ("greyed[0]", "g_nn01.nothing", "greyed[0]", "forms.error.unknown_cell"),
    ("rows[1]", {"key": "lua", "kind": "indicator", "label": "Lúa"}, "rows[1]", "forms.error.indicator_missing"),
    ("rows[0].kind", "computed", "rows[0].formula", "forms.error.formula_missing"),
]


def _jsonschema_places(document) -> set[str]:
    def place(error):
        out = ""
        for part in error.absolute_path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out or "$"

    return {place(e) for e in jsonschema.Draft202012Validator(form_schema.SCHEMA).iter_errors(document)}


@pytest.mark.parametrize("path, value, where, key", SHAPE_MISTAKES + MEANING_MISTAKES)
def test_each_form_mistake_is_named_with_its_json_path(tmp_path, path, value, where, key):
    document = _set(FORM, path, value)
    data = plugin_data("fx_agri", package(tmp_path, forms={"nn_01.json": document}))
    with pytest.raises(PluginDataError) as exc_info:
        data.forms()
    problem = exc_info.value.problems[0]  # (a key used twice also confuses what refers to it)
    assert (problem.where, problem.key) == (where, key)
    assert_named_in_both_languages(problem, "data/forms/nn_01.json", where)
    # The published schema agrees: it finds the shape mistakes at the same place (an unknown field at
    # the object holding it), and none of the engine's.
    if key == "plugin_data.schema.unknown":
        where = where.rsplit(".", 1)[0]
    assert _jsonschema_places(document) == ({where} if (path, value) in [m[:2] for m in SHAPE_MISTAKES] else set())


def test_a_form_file_that_is_not_json_is_named_with_its_line(tmp_path):
    text = json.dumps(FORM, ensure_ascii=False, indent=2).replace('"heading",', '"heading"', 1)
    data = plugin_data("fx_agri", package(tmp_path, forms={"nn_01.json": text}))
    with pytest.raises(PluginDataError) as exc_info:
        data.forms()
    problem = only_problem(exc_info)
    assert problem.key == "plugin_data.json_syntax" and dict(problem.params)["line"] == 10
    assert_named_in_both_languages(problem, "data/forms/nn_01.json", "10")


def test_every_mistake_of_a_file_is_named_at_once(tmp_path):
    document = _set(_set(FORM, "rows[1].kind", "total"), "columns[1].value_kind", "forecast")
    data = plugin_data("fx_agri", package(tmp_path, forms={"nn_01.json": document}))
    with pytest.raises(PluginDataError) as exc_info:
        data.forms()
    assert [p.where for p in exc_info.value.problems] == ["rows[1].kind", "columns[1].value_kind"]
    first_line = str(exc_info.value).splitlines()[0]  # what the plugins page shows
    assert "fx_agri" in first_line and "rows[1].kind" in first_line and " / " in first_line


# -- regimes: each mistake named with its TOML key ----------------------------------------------------

@pytest.mark.parametrize("old, new, where, key", [
    ('frequency = "monthly"', 'frequncy = "monthly"', "frequncy", "plugin_data.schema.unknown"),
    ('frequency = "monthly"', 'frequency = "weekly"', "frequency", "regimes.error.choice"),
    ('sending_methods = ["system"]', 'sending_methods = "system"', "sending_methods",
     "plugin_data.toml_type.strings"),
    ('sending_methods = ["system"]', 'sending_methods = ["pigeon"]', "sending_methods", "regimes.error.choice"),
    ('type = "periodic"', 'type = "yearly"', "type", "regimes.error.choice"),
    ('code = "fx_agri.monthly"', 'code = "other.monthly"', "code", "plugin_data.regime_code"),
    ('form = "NN-01-THANG"', 'form = "NN-09"', "form", "plugin_data.form_unknown"),
    ('frequency = "monthly"', 'frequency = "quarterly"', "form", "plugin_data.form_frequency"),
    ('kinds = ["commune"]', 'kinds = ["village"]', "units.kinds", "plugin_data.schema.enum"),
    ('[issuing_unit]\nkind = "province"', '[issuing_unit]\nkind = "kingdom"', "issuing_unit.kind",
     "plugin_data.schema.enum"),
    ('[issuing_unit]\nkind = "province"', '[issuing_unit]\nname = "Tỉnh"', "issuing_unit.name",
     "plugin_data.schema.unknown"),
    ("date = 2026-01-05", 'date = "05/01/2026"', "legal.date", "plugin_data.toml_type.date"),
    ('rule = "1wd"', 'rule = "soon"', "deadline_rules[0]", "regimes.error.rule_invalid"),
    ('level = "Xã', 'levle = "Xã', "deadline_rules[0].levle", "plugin_data.schema.unknown"),
    ('rule = "1wd"', "rule = 1", "deadline_rules[0].rule", "plugin_data.toml_type.string"),
    ('name = "Báo cáo tiến độ gieo trồng hằng tháng"\n', "", "$", "plugin_data.schema.required"),
    ('content = "Diện tích gieo trồng trong tháng."', 'content = "Diện tích', "$", "plugin_data.toml_syntax"),
])
def test_each_regime_mistake_is_named_with_its_key(tmp_path, settings, db_session, old, new, where, key):
    assert old in REGIME
    plugin = types.ModuleType("fx_agri")
    data = plugin_data("fx_agri", package(tmp_path, regimes={"01_monthly.toml": REGIME.replace(old, new),
                                                            "02_other.toml": REGIME.replace("fx_agri.monthly",
                                                                                            "fx_agri.other")}))
    with pytest.raises(PluginDataError) as exc_info:
        data.regimes()
    problem = only_problem(exc_info)
    assert (problem.where, problem.key) == (where, key)
    assert_named_in_both_languages(problem, "data/regimes/01_monthly.toml", where)
    # Through the hook: the mistake is recorded against the plugin, and nothing is written — not even
    # the good regime of the other file, nor the form.
    Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    data.load_indicators()
    plugin.register_regimes = hookimpl(lambda settings: data.regimes())
    pm = build_plugin_manager(settings, builtins=(), extra_plugins=[plugin], load_entrypoints=False)
    assert load_plugin_regimes(pm, settings) == {}
    assert not Regime.select().exists() and not Form.select().exists()
    (stage, summary, _), = pm.infos["fx_agri"].errors
    assert stage == "contribution" and "01_monthly.toml" in summary


def test_two_regime_files_with_one_code_are_refused(tmp_path):
    data = plugin_data("fx_agri", package(tmp_path, regimes={"01.toml": REGIME, "02.toml": REGIME}))
    with pytest.raises(PluginDataError) as exc_info:
        data.regimes()
    problem = only_problem(exc_info)
    assert (problem.file, problem.where, problem.key) == ("data/regimes/02.toml", "code", "plugin_data.code_twice")


# -- the published schema ------------------------------------------------------------------------------

def test_the_published_schema_is_the_validators_and_a_valid_draft_2020_12_schema():
    published = json.loads((ROOT / "docs" / "form.schema.json").read_text(encoding="utf-8"))
    assert published == form_schema.SCHEMA  # regenerate: python -m core.regimes.form_schema
    jsonschema.Draft202012Validator.check_schema(published)
    assert published["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert form_schema.unsupported_keywords(published) == []


def test_the_validator_refuses_a_schema_keyword_it_does_not_check():
    assert form_schema.unsupported_keywords({"type": "object", "properties": {"a": {"oneOf": []}}}) == \
        ["$.properties.a.oneOf"]
    assert form_schema.unsupported_keywords({"additionalProperties": {"type": "string"}}) != []


def test_every_shipped_form_passes_the_validator_and_the_published_schema():
    files = sorted((ROOT / "plugins").glob("*/data/forms/*.json"))
    assert len(files) >= 10
    for path in files:
        document = json.loads(path.read_text(encoding="utf-8"))
        assert form_schema.check_form_file(document) == [], path.name
        assert _jsonschema_places(document) == set(), path.name


# -- the documentation is enough to write the files --------------------------------------------------

def _blocks(doc: str, language: str) -> list[str]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_documented_examples_load(tmp_path, db_session):
    (form_text,) = _blocks("forms.md", "json")
    (regime_text,) = _blocks("plugin_data.md", "toml")
    regime_text = regime_text.replace("nong_nghiep.", "fx_agri.")
    data = plugin_data("fx_agri", package(tmp_path, forms={"nn.json": form_text},
                                          regimes={"01_monthly.toml": regime_text}))
    assert data.load_indicators() == 2
    (spec,) = data.regimes()
    assert spec.form["code"] == json.loads(form_text)["code"] and spec.receiving_unit_kind == "province"


def test_every_field_and_key_is_documented():
    from core import plugin_data as module

    forms_doc = (ROOT / "docs" / "forms.md").read_text(encoding="utf-8")
    for part in ("row", "column", "rule", "section"):
        for name in form_schema.SCHEMA["$defs"][part]["properties"]:
            assert f"| `{name}` |" in forms_doc, (part, name)
    for name in form_schema.SCHEMA["properties"]:
        assert f"| `{name}` |" in forms_doc, name
    regimes_doc = (ROOT / "docs" / "plugin_data.md").read_text(encoding="utf-8")
    keys = [k for k, (_, kind) in module.TOP_KEYS.items() if kind != module.TABLE]
    keys += [f"{table}.{k}" for table, subs in module.TABLE_KEYS.items() for k in subs]
    for key in keys:
        assert f"`{key}`" in regimes_doc, key
    for column in ("Đơn vị tính", "Loại giá trị", "Cách tổng hợp", "Cấp", "Văn bản quy định"):
        assert f"| {column} |" in regimes_doc, column
