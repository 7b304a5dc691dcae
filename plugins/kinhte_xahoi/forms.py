"""The monthly data form (Biểu số 01/KTXH) of the socio-economic regime.

Rows: the plugin's monthly indicators under their group headings, plus the total of exports and
imports as a computed row. Columns follow the monthly forms provincial departments use (scheme A
of the Sở Công Thương forms in the reference data): the previous month and the same month last
year pre-filled from stored figures, this month typed in, the year to date accumulated, the
year's plan, and the ratios to the previous month, the same month last year and the plan; in May
the 6-month estimate and in October the year's estimate are added, as scheme B does.

Indexes (IIP, CPI: % of the same period last year) are not added up: their year-to-date, plan
and ratio cells are greyed. The rules are the checks a planning department runs by hand today:
no negative figure, whole numbers for counts, and a warning when a month moves by more than
30 % against the previous one (to be explained in the narrative).
"""

from __future__ import annotations

from .catalogue import rows

FORM_CODE = "KTXH-01-THANG"
FORM_NAME = "Biểu số 01/KTXH: Một số chỉ tiêu kinh tế - xã hội chủ yếu hằng tháng"
INDEX_CODES = ("KX0201", "KX0306")  # % of the same period last year: never summed
COUNT_CODES = ("KX0501", "KX0701", "KX0702", "KX0703")
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")

COLUMNS = (
    {"key": "prev", "kind": "prefill", "label": "Thực hiện tháng {m-1}/{py}", "period": "previous",
     "value_kind": "actual"},
    {"key": "cur", "kind": "input", "label": "Thực hiện tháng {m}/{y}", "period": "current",
     "value_kind": "actual"},
    {"key": "ytd", "kind": "computed", "label": "Lũy kế {m} tháng năm {y}", "accumulate": "cur",
     "value_kind": "actual"},
    {"key": "same", "kind": "prefill", "label": "Tháng {m}/{y-1}", "period": "same_last_year",
     "value_kind": "actual"},
    {"key": "ytd_ly", "kind": "prefill", "label": "Lũy kế {m} tháng năm {y-1}", "period": "year_to_date_last_year",
     "value_kind": "actual"},
    {"key": "plan", "kind": "prefill", "label": "Kế hoạch năm {y}", "period": "year", "value_kind": "plan"},
    {"key": "vs_prev", "kind": "computed", "label": "Tháng {m} so với tháng trước (%)",
     "formula": "cur / prev * 100", "decimals": 1, "percent": True},
    {"key": "vs_same", "kind": "computed", "label": "Tháng {m} so với cùng kỳ (%)",
     "formula": "cur / same * 100", "decimals": 1, "percent": True},
    {"key": "ytd_vs_ly", "kind": "computed", "label": "Lũy kế so với cùng kỳ (%)",
     "formula": "ytd / ytd_ly * 100", "decimals": 1, "percent": True},
    {"key": "ytd_vs_plan", "kind": "computed", "label": "Lũy kế so với kế hoạch năm (%)",
     "formula": "ytd / plan * 100", "decimals": 1, "percent": True},
    {"key": "est6", "kind": "input", "label": "Ước thực hiện 6 tháng năm {y}", "period": "current",
     "value_kind": "estimate", "periods": [5]},
    {"key": "est_year", "kind": "input", "label": "Ước thực hiện năm {y}", "period": "current",
     "value_kind": "estimate", "periods": [10]},
)
NOT_SUMMED = ("ytd", "ytd_ly", "plan", "vs_prev", "ytd_vs_ly", "ytd_vs_plan", "est6", "est_year")

OUTLINE = (
    ("ketqua", "I. Tình hình kinh tế - xã hội trong tháng",
     "Kết quả chủ yếu: sản xuất, thương mại, dịch vụ, ngân sách, đầu tư; văn hóa - xã hội; quốc phòng, an ninh. "
     "Giải thích các chỉ tiêu biến động trên 30% so với tháng trước.", True),
    ("hanche", "II. Tồn tại, hạn chế và nguyên nhân", "", True),
    ("nhiemvu", "III. Nhiệm vụ, giải pháp trọng tâm tháng tới", "", True),
    ("kiennghi", "IV. Kiến nghị, đề xuất", "Nêu cụ thể cơ quan được kiến nghị và nội dung.", False),
)


def monthly_definition() -> dict:
    data = rows()
    groups = {r["code"]: r["name"] for r in data if len(r["code"]) == 4}
    indicators = [r for r in data if len(r["code"]) == 6 and r["monthly"] == "yes"]
    out_rows, greyed = [], []
    heading_no = 0
    number = 0
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
            integer = r["code"] in COUNT_CODES
            out_rows.append({"key": key, "kind": "indicator", "number": str(number), "label": r["name"],
                             "indicator": r["code"], "unit": r["unit_of_measure"],
                             "decimals": 0 if integer else (2 if r["code"] in INDEX_CODES else 1)})
            if r["code"] in INDEX_CODES:
                greyed += [f"{key}.{col}" for col in NOT_SUMMED]
            if r["code"] == "KX0303":
                out_rows.append({"key": "xnk", "kind": "computed", "number": "", "indent": 1,
                                 "label": "Tổng kim ngạch xuất, nhập khẩu", "formula": "sum(kx0302, kx0303)",
                                 "unit": "triệu USD", "decimals": 1})
    counts = [c.lower() for c in COUNT_CODES]
    rules = [
        {"key": "KHONG_AM", "severity": "blocker", "expression": "cur >= 0",
         "message": {"vi": "{row}: số liệu không được âm.", "en": "{row}: a figure cannot be negative."}},
        {"key": "SO_NGUYEN", "severity": "blocker", "expression": "round(cur, 0) = cur", "rows": counts,
         "message": {"vi": "{row}: phải là số nguyên.", "en": "{row}: must be a whole number."}},
        {"key": "BIEN_DONG", "severity": "warning", "expression": "abs(cur / prev - 1) * 100 <= 30",
         "message": {"vi": "{row}: thay đổi hơn 30% so với tháng trước — kiểm tra lại hoặc giải thích trong mục I.",
                     "en": "{row}: changed by more than 30% against the previous month — check it or explain it "
                           "in section I."}},
        {"key": "CHI_SO", "severity": "warning", "expression": "cur >= 50 and cur <= 200",
         "rows": [c.lower() for c in INDEX_CODES],
         "message": {"vi": "{row}: chỉ số so với cùng kỳ thường nằm trong khoảng 50–200%.",
                     "en": "{row}: an index against last year is usually between 50 and 200%."}},
    ]
    return {
        "title": FORM_NAME,
        "rows": out_rows,
        "columns": [dict(c) for c in COLUMNS],
        "greyed": greyed,
        "rules": rules,
        "outline": [{"key": k, "title": t, "guidance": g, "required": req} for k, t, g, req in OUTLINE],
    }


def monthly_form() -> dict:
    return {"code": FORM_CODE, "name": FORM_NAME, "definition": monthly_definition()}
