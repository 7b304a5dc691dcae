"""The form bench (issue 5): one report on a form of 60 rows × 13 columns (780 cells).

Called by bench/run.py on each backend after the demo data is seeded. The form: 5 group headings,
50 indicator rows and 5 computed subtotals; columns previous month, this month and its three
parts (state, non-state, foreign-invested sector: four input columns), year to date (accumulated),
same month last year, year to date last year and the year's plan (pre-filled), four ratio columns
(computed); rules: no negative figure (blocker), parts add up to the month (error), a change of more
than 30 % (warning). The previous months are stored as figures so the pre-filled columns are full.

Timed, as server time through the whole ASGI stack (middleware, session, templates):
render the entry page, recalculate while typing, save every input cell (each round changes all
200 of them; once in the core service, once as the screen posts it), export and download the
Excel template, upload a filled template (each round a file with other values, so every import
writes 200 cells).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import statistics
import sys
import threading
import time

GROUPS = 5
PER_GROUP = 10
COLUMNS = [
    {"key": "prev", "kind": "prefill", "label": "Tháng {m-1}/{py}", "period": "previous"},
    {"key": "cur", "kind": "input", "label": "Thực hiện tháng {m}/{y}"},
    {"key": "nn", "kind": "input", "label": "Khu vực nhà nước"},
    {"key": "ngoai", "kind": "input", "label": "Ngoài nhà nước"},
    {"key": "fdi", "kind": "input", "label": "Có vốn đầu tư nước ngoài"},
    {"key": "ytd", "kind": "computed", "label": "Lũy kế {m} tháng", "accumulate": "cur"},
    {"key": "same", "kind": "prefill", "label": "Tháng {m}/{y-1}", "period": "same_last_year"},
    {"key": "ytd_ly", "kind": "prefill", "label": "Lũy kế {m} tháng năm {y-1}", "period": "year_to_date_last_year"},
    {"key": "plan", "kind": "prefill", "label": "Kế hoạch năm {y}", "period": "year", "value_kind": "plan"},
    {"key": "vs_prev", "kind": "computed", "label": "So với tháng trước (%)", "formula": "cur / prev * 100",
     "decimals": 1, "percent": True},
    {"key": "vs_same", "kind": "computed", "label": "So với cùng kỳ (%)", "formula": "cur / same * 100",
     "decimals": 1, "percent": True},
    {"key": "ytd_vs_ly", "kind": "computed", "label": "Lũy kế so với cùng kỳ (%)", "formula": "ytd / ytd_ly * 100",
     "decimals": 1, "percent": True},
    {"key": "ytd_vs_plan", "kind": "computed", "label": "Lũy kế so với kế hoạch (%)", "formula": "ytd / plan * 100",
     "decimals": 1, "percent": True},
]
INPUTS = ("cur", "nn", "ngoai", "fdi")
REPORTER = "bench_reporter"


def definition() -> dict:
    rows = []
    for g in range(1, GROUPS + 1):
        rows.append({"key": f"g{g}", "kind": "heading", "number": str(g), "label": f"Nhóm chỉ tiêu {g}"})
        keys = []
        for i in range(1, PER_GROUP + 1):
            key = f"bm{g:02d}{i:02d}"
            keys.append(key)
            rows.append({"key": key, "kind": "indicator", "number": f"{g}.{i}", "indicator": f"BM{g:02d}{i:02d}",
                         "label": f"Chỉ tiêu thử nghiệm {g}.{i}", "unit": "tỷ đồng", "decimals": 1})
        rows.append({"key": f"t{g}", "kind": "computed", "label": f"Cộng nhóm {g}", "formula": " + ".join(keys),
                     "decimals": 1})
    rules = [
        {"key": "KHONG_AM", "severity": "blocker", "expression": "cur >= 0 and nn >= 0 and ngoai >= 0 and fdi >= 0"},
        {"key": "CONG_DON", "severity": "error", "expression": "cur = nn + ngoai + fdi"},
        {"key": "BIEN_DONG", "severity": "warning", "expression": "abs(cur / prev - 1) * 100 <= 30"},
    ]
    return {"title": "Biểu thử nghiệm 60 dòng × 13 cột", "rows": rows, "columns": COLUMNS, "greyed": [],
            "rules": rules, "outline": [{"key": "ketqua", "title": "Kết quả", "guidance": "", "required": True}]}


def issue_for_commune(admin, form_code: str, form_name: str, layout: dict, regime_code: str, regime_name: str,
                      content: str, province, commune, today: dt.date):
    """Publish a form, issue a monthly regime with it from one commune to the province, and return
    that commune's open report (bench/forms.py and bench/events.py build their reports so)."""
    from core.models import Unit
    from core.regimes import forms as fm
    from core.regimes import regimes as rg
    from core.regimes.workdays import WorkCalendar
    from core.reporting.opening import Report, issue_and_open

    form = fm.create_form(admin, form_code, form_name, province.id, frequency="monthly")
    fm.save_draft(admin, form.id, layout)
    fm.publish(admin, form.id)
    regime = rg.save_draft(admin, {
        "code": regime_code, "name": regime_name, "regime_type": "periodic",
        "content": content, "content_type": "data", "unit_ids": [commune.id],
        "receiving_unit_id": province.id, "sending_methods": ["system"],
        "deadline_rules": [{"level": "Xã → tỉnh", "from_kind": "commune", "rule": "2wd"}],
        "frequency": "monthly", "cutoff_rule": "decree", "form_id": form.id, "legal_number": "Thử nghiệm",
        "legal_date": "2025-08-01", "legal_issuer": "Bench", "issuing_unit_id": province.id,
        "preparing_unit_id": Unit.get(Unit.code == "QT.STC").id})
    issue_and_open(admin, regime.id, calendar=WorkCalendar(), today=today)
    return Report.get((Report.regime == regime) & (Report.unit == commune))


def seed(today: dt.date):
    """The bench form, a regime issued with it, one commune's report, its stored past figures and
    a reporter of that commune. Returns (report id, username, password)."""
    from core.accounts import login as accounts
    from core.accounts.access import Grant, Role
    from core.accounts.permissions import core_access
    from core.catalogue import indicators
    from core.catalogue.figures import Figure, put_values
    from core.models import Unit, User

    admin = core_access(User.get(User.username == "quantri"))
    province = Unit.get(Unit.code == "44")
    commune = Unit.get(Unit.code == "18880")
    for g in range(1, GROUPS + 1):
        indicators.save_group(f"BM{g:02d}", f"Nhóm chỉ tiêu thử nghiệm {g}", "province")
        for i in range(1, PER_GROUP + 1):
            indicators.save_indicator({"code": f"BM{g:02d}{i:02d}", "name": f"Chỉ tiêu thử nghiệm {g}.{i}",
                                       "group": f"BM{g:02d}", "levels": "province", "unit_of_measure": "tỷ đồng",
                                       "aggregation": "sum"})
    report = issue_for_commune(admin, "BENCH-60X13", "Biểu thử nghiệm 60 × 13", definition(), "BENCH.THANG",
                               "Báo cáo thử nghiệm hằng tháng", "Thử nghiệm tốc độ", province, commune, today)
    figures = []
    for g in range(1, GROUPS + 1):
        for i in range(1, PER_GROUP + 1):
            code = f"BM{g:02d}{i:02d}"
            for year in (report.year - 1, report.year):
                figures.append(Figure(code, commune.id, "annual", year, 1, "plan", str(1200 + g * 10 + i)))
                for month in range(1, 13):
                    if (year, month) < (report.year, report.period_index):
                        figures.append(Figure(code, commune.id, "monthly", year, month, "actual",
                                              str(100 + g + i + month)))
    put_values(figures, source="bench")
    password = accounts.random_password()
    user = accounts.create_user(REPORTER, "Người nhập thử", password, commune)
    Grant.create(user=user, role=Role.get(Role.code == "reporter"), unit=commune)
    return report.id, REPORTER, password


def input_cells():
    return [(f"bm{g:02d}{i:02d}", col) for g in range(1, GROUPS + 1) for i in range(1, PER_GROUP + 1)
            for col in INPUTS]


def values_for(round_no: int) -> dict:
    """A full set of input values that differs from every other round's in every cell."""
    out = {}
    for row, col in input_cells():
        base = 1000 * (round_no + 1) + 4 * int(row[-2:])
        parts = {"nn": base // 4, "ngoai": base // 2}
        parts["fdi"] = base - parts["nn"] - parts["ngoai"]
        out[(row, col)] = str(base if col == "cur" else parts[col])
    return out


def run_forms(client, settings, login, measure, rounds: int) -> dict:
    """Time the form pages for the bench reporter; ``login(username, password)`` logs the client in."""
    from core.db import db
    from openpyxl import load_workbook

    from core.reporting import data as rd
    from core.models import User
    from core.accounts.permissions import core_access
    from web.middleware import csrf_token_for

    with db.connection_context():
        report_id, username, password = seed(dt.date.today())
    login(username, password)
    token = csrf_token_for(settings.secret_key, client.cookies.get("baocao_csrf"))
    heavy = max(10, rounds // 10)
    results = {}
    page = client.get(f"/reports/{report_id}")
    assert page.status_code == 200, page.status_code
    results["GET /reports/{id} (60×13 entry page)"] = measure(lambda: client.get(f"/reports/{report_id}"), heavy)

    counter = {"n": 0}
    form_fields = _grid_fields(page.text)

    def calc():
        data = dict(form_fields, csrf_token=token)
        client.post(f"/reports/{report_id}/calc", data=data, headers={"HX-Request": "true"})
    results["POST calc (recalculate while typing)"] = measure(calc, heavy)

    with db.connection_context():
        access = core_access(User.get(User.username == username))

    def save_all():
        counter["n"] += 1
        cells = {cell: (rd.MISSING, value) for cell, value in values_for(counter["n"]).items()}
        with db.connection_context():
            result = rd.save(access, report_id, cells, source="bench")
        assert result.changed_cells == len(cells), result
    results["save all 200 input cells (core)"] = measure(save_all, heavy)

    # The same through the screen's save (POST as the grid form sends it: value and base per cell).
    bases = {cell: value for cell, value in values_for(counter["n"]).items()}

    def save_posted():
        counter["n"] += 1
        values = values_for(counter["n"])
        data = {"csrf_token": token}
        for (row, col), value in values.items():
            data[f"cell.{row}.{col}"] = value
            data[f"base.{row}.{col}"] = bases[(row, col)]
        response = client.post(f"/reports/{report_id}/save", data=data, headers={"HX-Request": "true"})
        assert response.status_code == 200, response.status_code
        bases.update(values)
    results["POST save, all 200 input cells"] = measure(save_posted, heavy)
    results.update(autosave_timings(client, report_id, token, rounds))

    results["GET export.xlsx"] = measure(lambda: client.get(f"/reports/{report_id}/export.xlsx"), heavy)
    template = client.get(f"/reports/{report_id}/template.xlsx")
    assert template.status_code == 200, template.status_code
    results["GET template.xlsx"] = measure(lambda: client.get(f"/reports/{report_id}/template.xlsx"), heavy)

    # Import: the template is downloaded while the report holds values A and filled with values B;
    # before each timed upload the report is put back to A (not timed), so each import writes all
    # 200 cells and the per-cell lock (base = the value at download) finds no clash.
    values_a, values_b = values_for(100), values_for(101)

    def put_back_a():
        with db.connection_context():
            rd.save(access, report_id, {cell: (rd.MISSING, v) for cell, v in values_a.items()}, source="bench")
    put_back_a()
    book = load_workbook(io.BytesIO(client.get(f"/reports/{report_id}/template.xlsx").content))
    addresses = _input_addresses(book, settings.secret_key)
    for cell, value in values_b.items():
        book.worksheets[0][addresses[cell]] = float(value)
    out = io.BytesIO()
    book.save(out)
    filled = out.getvalue()
    samples = []
    for n in range(heavy + 3):
        put_back_a()
        start = time.perf_counter()
        response = client.post(f"/reports/{report_id}/upload", data={"csrf_token": token},
                               files={"file": ("bieu.xlsx", filled, "application/octet-stream")},
                               follow_redirects=False)
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 303, response.status_code
        if n >= 3:  # the first rounds warm up
            samples.append(elapsed)
    results["POST upload (Excel import, 200 cells)"] = (statistics.median(samples), _p95(samples))
    return results


class ServerTimer:
    """ASGI wrapper that records each request's server time (from the call to the last byte sent),
    without the test client's own work of encoding the form and reading the answer."""

    def __init__(self, app):
        self.app = app
        self.samples: list[float] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.samples.append((time.perf_counter() - start) * 1000)


def autosave_timings(client, report_id: int, token: str, rounds: int) -> dict:
    """Issue 12 item 24: the server time of an autosave (the grid form as grid.js posts it: 200
    input cells with their bases and the narrative, one figure changed) next to a bare Starlette
    endpoint that only parses the same form. Target: a median of 20 ms or less. Then the SQL
    statements one autosave runs (printed; tests/web/test_autosave_queries.py holds their budget)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    page = client.get(f"/reports/{report_id}").text
    fields = {k: v for k, v in _grid_fields(page.split('id="entry-form"', 1)[1].split("</form>", 1)[0]).items()
              if k.startswith(("cell.", "base.", "sbase."))}
    fields["section.ketqua"] = ""
    counter = {"n": 0}
    timer = ServerTimer(client.app)
    timed = TestClient(timer, cookies=client.cookies)
    headers = {"HX-Request": "true", "X-CSRF-Token": token}

    def autosave():
        counter["n"] += 1
        data = dict(fields, csrf_token=token)
        data["cell.bm0101.cur"] = str(5000 + counter["n"])
        response = timed.post(f"/reports/{report_id}/save", data=data, headers=headers)
        assert response.status_code == 200 and 'data-outcome="saved"' in response.text, response.text[:300]
        for name, value in re.findall(r'name="(base\.[^"]+)" value="([^"]*)"', response.text):
            fields[name] = value

    async def bare(request):
        form = await request.form(max_fields=10_000)
        return PlainTextResponse(str(len(form)))

    bare_timer = ServerTimer(Starlette(routes=[Route("/save", bare, methods=["POST"])]))
    bare_client = TestClient(bare_timer)

    def bare_post():
        bare_client.post("/save", data=dict(fields, csrf_token=token), headers=headers)

    n = max(20, rounds // 4)
    results = {}
    for label, fn, t in (("POST save, autosave 1 of 200 (server)", autosave, timer),
                         ("bare Starlette POST, same form (server)", bare_post, bare_timer)):
        for _ in range(5):
            fn()
        t.samples.clear()
        for _ in range(n):
            fn()
        results[label] = (statistics.median(t.samples), _p95(t.samples))
    counts = count_queries(autosave, 5)
    print(f"autosave on {_backend()}: {statistics.median(counts):.0f} SQL statements per request "
          f"(min {min(counts)}, max {max(counts)} over {len(counts)} autosaves)", file=sys.stderr)
    return results


def count_queries(fn, rounds: int) -> list[int]:
    """The statements the database runs during each of ``rounds`` calls of ``fn``, from any thread
    (the app runs its queries in worker threads): a wrapper around the database's ``execute_sql``,
    after the timings so it costs them nothing."""
    from core.db import db

    database, counts, lock = db.obj, [], threading.Lock()
    original = database.execute_sql
    current = [0]

    def execute_sql(sql, params=None, *args, **kwargs):
        with lock:
            current[0] += 1
        return original(sql, params, *args, **kwargs)

    database.execute_sql = execute_sql
    try:
        for _ in range(rounds):
            current[0] = 0
            fn()
            counts.append(current[0])
    finally:
        del database.execute_sql
    return counts


def _backend() -> str:
    from core.db import is_sqlite

    return "SQLite" if is_sqlite() else "PostgreSQL"


def _p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def _grid_fields(html: str) -> dict:
    """The entry page's inputs as the browser would post them."""
    fields = {}
    for match in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html):
        fields[match.group(1)] = match.group(2)
    return fields


def _input_addresses(book, secret: str) -> dict:
    """(row, col) → A1 address, read from the template's signed hidden sheet."""
    from core.reporting.excel import read_payload

    return {(row, col): address for row, col, address, _ in read_payload(book, secret=secret)["inputs"]}
