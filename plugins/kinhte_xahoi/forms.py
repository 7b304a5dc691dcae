"""The data forms of the socio-economic regimes: one per period kind (monthly, quarterly, six-month,
nine-month, annual) and per level (Biểu số 01/KTXH for the departments, Biểu số 02/KTXH-X for the
communes).

Rows: the plugin's indicators collected in that period kind, under their group headings. A
commune's form carries only the indicators the catalogue gives at commune level (``levels`` in
``data/indicators.csv``): its budget, public investment, fisheries, forests, jobs and traffic
accidents — never the province's indexes (CPI, IIP), exports or GRDP, which no commune produces.
The departments' monthly form also has the total of exports and imports as a computed row.

Columns follow the forms provincial departments use (the column schemes of the reference data):
- monthly (scheme A): the previous month and the same month last year pre-filled from stored
  figures, this month typed in, the year to date accumulated, the year's plan and the ratios; in May
  the 6-month estimate and in October the year's estimate are added, as scheme B does;
- quarterly: the same shape, by quarter;
- six-month: the same period last year, the year's plan, the half-year typed in, the year to date
  and the ratios to last year and to the plan;
- nine-month (a window that is itself the year to date): last year's nine months, the plan, the nine
  months typed in, the estimate for the whole year and the ratios;
- annual: last year, the plan, the year typed in, the ratios, and next year's plan.

Indexes and rates (IIP, CPI, GRDP growth, poverty rate: value type percent) are not added up:
their year-to-date and ratio cells are greyed. The rules are the checks a planning department
runs by hand today: no negative figure, whole numbers for counts, and (where there is a previous
period) a warning when a figure moves by more than 30 % against it, to be explained in the
narrative.
"""

from __future__ import annotations

from .catalogue import rows

ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")
INDEX_CODES = ("KX0201", "KX0306")  # % of the same period last year: usually 50–200

# frequency → (code part, name part, word for "this period" in the outline, word for "next period")
PERIOD_KINDS = {
    "monthly": ("THANG", "hằng tháng", "trong tháng", "tháng tới"),
    "quarterly": ("QUY", "quý", "trong quý", "quý tới"),
    "half_year": ("6THANG", "6 tháng", "trong 6 tháng", "6 tháng tới"),
    "nine_months": ("9THANG", "9 tháng", "trong 9 tháng", "những tháng cuối năm"),
    "annual": ("NAM", "năm", "trong năm", "năm tới"),
}
# The catalogue's "periodicity" word for each period kind; a monthly indicator is in every form.
PERIODICITY_WORD = {"monthly": "tháng", "quarterly": "quý", "half_year": "6 tháng", "nine_months": "9 tháng",
                    "annual": "năm"}
LEVELS = {
    # level → (form number, code prefix, name suffix, unit kinds that report with it)
    "province": ("01/KTXH", "KTXH-01", "", ("department",)),
    "commune": ("02/KTXH-X", "KTXH-02X", " của cấp xã", ("commune",)),
}


def _pct(key: str, label: str, formula: str) -> dict:
    return {"key": key, "kind": "computed", "label": label, "formula": formula, "decimals": 1, "percent": True}


_PLAN = {"key": "plan", "kind": "prefill", "label": "Kế hoạch năm {y}", "period": "year", "value_kind": "plan"}

# Each column may say "summed": its cells mean something only for a figure that adds up (greyed on
# an index or a rate row).
def _running(word: str, short: str) -> tuple:
    """The columns of a report that runs through the year, month by month or quarter by quarter
    (``word`` "tháng" or "quý"): the previous period, this one, the year to date, the same period
    and year to date last year, the plan, and the ratios between them."""
    return (
        {"key": "prev", "kind": "prefill", "label": f"Thực hiện {word} {{m-1}}/{{py}}", "period": "previous",
         "value_kind": "actual"},
        {"key": "cur", "kind": "input", "label": f"Thực hiện {word} {{m}}/{{y}}", "period": "current",
         "value_kind": "actual"},
        {"key": "ytd", "kind": "computed", "label": f"Lũy kế {{m}} {word} năm {{y}}", "accumulate": "cur",
         "value_kind": "actual", "summed": True},
        {"key": "same", "kind": "prefill", "label": f"{short} {{m}}/{{y-1}}", "period": "same_last_year",
         "value_kind": "actual"},
        {"key": "ytd_ly", "kind": "prefill", "label": f"Lũy kế {{m}} {word} năm {{y-1}}",
         "period": "year_to_date_last_year", "value_kind": "actual", "summed": True},
        {**_PLAN, "summed": True},
        {**_pct("vs_prev", f"{short} {{m}} so với {word} trước (%)", "cur / prev * 100"), "summed": True},
        _pct("vs_same", f"{short} {{m}} so với cùng kỳ (%)", "cur / same * 100"),
        {**_pct("ytd_vs_ly", "Lũy kế so với cùng kỳ (%)", "ytd / ytd_ly * 100"), "summed": True},
        {**_pct("ytd_vs_plan", "Lũy kế so với kế hoạch năm (%)", "ytd / plan * 100"), "summed": True},
    )


COLUMNS = {
    "monthly": (
        *_running("tháng", "Tháng"),
        {"key": "est6", "kind": "input", "label": "Ước thực hiện 6 tháng năm {y}", "period": "current",
         "value_kind": "estimate", "periods": [5], "summed": True},
        {"key": "est_year", "kind": "input", "label": "Ước thực hiện năm {y}", "period": "current",
         "value_kind": "estimate", "periods": [10], "summed": True},
    ),
    "quarterly": _running("quý", "Quý"),
    "quarterly": (
        {"key": "prev", "kind": "prefill", "label": "Thực hiện quý {m-1}/{py}", "period": "previous",
         "value_kind": "actual"},
        {"key": "cur", "kind": "input", "label": "Thực hiện quý {m}/{y}", "period": "current",
         "value_kind": "actual"},
        {"key": "ytd", "kind": "computed", "label": "Lũy kế {m} quý năm {y}", "accumulate": "cur",
         "value_kind": "actual", "summed": True},
        {"key": "same", "kind": "prefill", "label": "Quý {m}/{y-1}", "period": "same_last_year",
         "value_kind": "actual"},
        {"key": "ytd_ly", "kind": "prefill", "label": "Lũy kế {m} quý năm {y-1}",
         "period": "year_to_date_last_year", "value_kind": "actual", "summed": True},
        {**_PLAN, "summed": True},
        {**_pct("vs_prev", "Quý {m} so với quý trước (%)", "cur / prev * 100"), "summed": True},
        _pct("vs_same", "Quý {m} so với cùng kỳ (%)", "cur / same * 100"),
        {**_pct("ytd_vs_ly", "Lũy kế so với cùng kỳ (%)", "ytd / ytd_ly * 100"), "summed": True},
        {**_pct("ytd_vs_plan", "Lũy kế so với kế hoạch năm (%)", "ytd / plan * 100"), "summed": True},
    ),
    "half_year": (
        {"key": "same", "kind": "prefill", "label": "Cùng kỳ năm {y-1}", "period": "same_last_year",
         "value_kind": "actual"},
        {**_PLAN, "summed": True},
        {"key": "cur", "kind": "input", "label": "Thực hiện kỳ báo cáo năm {y}", "period": "current",
         "value_kind": "actual"},
        {"key": "ytd", "kind": "computed", "label": "Lũy kế từ đầu năm {y}", "accumulate": "cur",
         "value_kind": "actual", "summed": True},
        _pct("vs_same", "Kỳ báo cáo so với cùng kỳ (%)", "cur / same * 100"),
        {**_pct("ytd_vs_plan", "Lũy kế so với kế hoạch năm (%)", "ytd / plan * 100"), "summed": True},
    ),
    "nine_months": (
        {"key": "same", "kind": "prefill", "label": "9 tháng năm {y-1}", "period": "same_last_year",
         "value_kind": "actual"},
        {**_PLAN, "summed": True},
        {"key": "cur", "kind": "input", "label": "Thực hiện 9 tháng năm {y}", "period": "current",
         "value_kind": "actual"},
        _pct("vs_same", "9 tháng so với cùng kỳ (%)", "cur / same * 100"),
        {**_pct("vs_plan", "9 tháng so với kế hoạch năm (%)", "cur / plan * 100"), "summed": True},
        {"key": "est_year", "kind": "input", "label": "Ước thực hiện năm {y}", "period": "current",
         "value_kind": "estimate"},
        {**_pct("est_vs_plan", "Ước thực hiện năm so với kế hoạch (%)", "est_year / plan * 100"), "summed": True},
    ),
    "annual": (
        {"key": "same", "kind": "prefill", "label": "Thực hiện năm {y-1}", "period": "same_last_year",
         "value_kind": "actual"},
        _PLAN,
        {"key": "cur", "kind": "input", "label": "Thực hiện năm {y}", "period": "current", "value_kind": "actual"},
        _pct("vs_same", "Năm {y} so với năm {y-1} (%)", "cur / same * 100"),
        {**_pct("vs_plan", "Năm {y} so với kế hoạch (%)", "cur / plan * 100"), "summed": True},
        {"key": "plan_next", "kind": "input", "label": "Kế hoạch năm {y+1}", "period": "next_year",
         "value_kind": "plan"},
    ),
}


def form_code(frequency: str, level: str = "province") -> str:
    return f"{LEVELS[level][1]}-{PERIOD_KINDS[frequency][0]}"


def form_name(frequency: str, level: str = "province") -> str:
    number, _, suffix, _ = LEVELS[level]
    return f"Biểu số {number}: Một số chỉ tiêu kinh tế - xã hội chủ yếu{suffix} {PERIOD_KINDS[frequency][1]}"


def collected_in(row: dict, frequency: str) -> bool:
    """Whether the indicator has a figure for this period kind (a monthly one adds up to any)."""
    if row["monthly"] == "yes":
        return True
    words = {w.strip().lower() for w in (row["periodicity"] or "").split(",")}
    return PERIODICITY_WORD[frequency] in words


def levels_of(row: dict) -> list[str]:
    return [lv.strip() for lv in (row.get("levels") or "province").split(",") if lv.strip()]


def indicators_for(frequency: str, level: str = "province") -> list[dict]:
    """The catalogue rows a form of this period kind and level carries, in catalogue order."""
    return [r for r in rows() if len(r["code"]) == 6 and collected_in(r, frequency) and level in levels_of(r)]


def _outline(this: str, following: str) -> list[dict]:
    return [
        {"key": "ketqua", "title": f"I. Tình hình kinh tế - xã hội {this}",
         "guidance": "Kết quả chủ yếu: sản xuất, thương mại, dịch vụ, ngân sách, đầu tư; văn hóa - xã hội; "
                     "quốc phòng, an ninh. Giải thích các chỉ tiêu biến động trên 30% so với kỳ trước.",
         "required": True},
        {"key": "hanche", "title": "II. Tồn tại, hạn chế và nguyên nhân", "guidance": "", "required": True},
        {"key": "nhiemvu", "title": f"III. Nhiệm vụ, giải pháp trọng tâm {following}", "guidance": "",
         "required": True},
        {"key": "kiennghi", "title": "IV. Kiến nghị, đề xuất",
         "guidance": "Nêu cụ thể cơ quan được kiến nghị và nội dung.", "required": False},
    ]


def definition(frequency: str, level: str = "province") -> dict:
    data = rows()
    groups = {r["code"]: r["name"] for r in data if len(r["code"]) == 4}
    indicators = indicators_for(frequency, level)
    columns = COLUMNS[frequency]
    column_keys = {c["key"] for c in columns}
    not_summed = [c["key"] for c in columns if c.get("summed")]
    out_rows, greyed, plain, counts, indexes = [], [], [], [], []
    heading_no = number = 0
    for group_code, group_name in groups.items():
        members = [r for r in indicators if r["code"].startswith(group_code)]
        if not members:
            continue
        out_rows.append({"key": f"g_{group_code.lower()}", "kind": "heading", "number": ROMAN[heading_no],
                         "label": group_name})
        heading_no += 1
        for r in members:
            number += 1
            key = r["code"].lower()
            rate = r["value_type"] == "percent"
            integer = r["value_type"] == "integer"
            out_rows.append({"key": key, "kind": "indicator", "number": str(number), "label": r["name"],
                             "indicator": r["code"], "unit": r["unit_of_measure"],
                             "decimals": 0 if integer else (2 if rate else 1)})
            if rate:
                greyed += [f"{key}.{col}" for col in not_summed]
            else:
                plain.append(key)
            if integer:
                counts.append(key)
            if r["code"] in INDEX_CODES:
                indexes.append(key)
            if r["code"] == "KX0303" and any(x["code"] == "KX0302" for x in members):
                out_rows.append({"key": "xnk", "kind": "computed", "number": "", "indent": 1,
                                 "label": "Tổng kim ngạch xuất, nhập khẩu", "formula": "sum(kx0302, kx0303)",
                                 "unit": "triệu USD", "decimals": 1})
    rules = []
    if plain:  # a growth rate may be negative; a quantity may not
        rules.append({"key": "KHONG_AM", "severity": "blocker", "expression": "cur >= 0", "rows": plain,
                      "message": {"vi": "{row}: số liệu không được âm.", "en": "{row}: a figure cannot be negative."}})
    if counts:
        rules.append({"key": "SO_NGUYEN", "severity": "blocker", "expression": "round(cur, 0) = cur", "rows": counts,
                      "message": {"vi": "{row}: phải là số nguyên.", "en": "{row}: must be a whole number."}})
    if "prev" in column_keys and plain:
        rules.append({
            "key": "BIEN_DONG", "severity": "warning", "expression": "abs(cur / prev - 1) * 100 <= 30", "rows": plain,
            "message": {"vi": "{row}: thay đổi hơn 30% so với kỳ trước — kiểm tra lại hoặc giải thích trong mục I.",
                        "en": "{row}: changed by more than 30% against the previous period — check it or explain "
                              "it in section I."}})
    if indexes:
        rules.append({"key": "CHI_SO", "severity": "warning", "expression": "cur >= 50 and cur <= 200",
                      "rows": indexes,
                      "message": {"vi": "{row}: chỉ số so với cùng kỳ thường nằm trong khoảng 50–200%.",
                                  "en": "{row}: an index against last year is usually between 50 and 200%."}})
    _, _, this, following = PERIOD_KINDS[frequency]
    return {
        "title": form_name(frequency, level),
        "rows": out_rows,
        "columns": [{k: v for k, v in c.items() if k != "summed"} for c in columns],
        "greyed": greyed,
        "rules": rules,
        "outline": _outline(this, following),
    }


def form(frequency: str, level: str = "province") -> dict:
    """The form a regime of this period kind and level ships (``RegimeSpec.form``)."""
    return {"code": form_code(frequency, level), "name": form_name(frequency, level),
            "definition": definition(frequency, level)}


# The monthly departments' form under its former names (the demo and tests open it by code).
FORM_CODE = form_code("monthly")
FORM_NAME = form_name("monthly")


def monthly_definition() -> dict:
    return definition("monthly")


def monthly_form() -> dict:
    return form("monthly")
