"""The provincial periodic socio-economic regimes (chế độ báo cáo định kỳ kinh tế - xã hội): monthly,
quarterly, six-month, nine-month and annual, as the core loads them — drafts the province completes
and issues.

What the plugin cannot know is left for the province to fill before issuing: the number and date of
its own decision (Art. 11: a periodic regime is set out in a legal normative document of the
provincial People's Committee; the former Quảng Trị one was QĐ 41/2019/QĐ-UBND, and nothing is known
yet of the merged province's), so the core refuses to issue a draft without it.

Levels and deadlines. Since 01/07/2025 there are two levels of local government: communes and the
departments report to the provincial People's Committee through the planning department, which
consolidates; the province reports to the Government by the 25th of the window's last month
(Decree 09/2019 Art. 13 cl. 1). Each period kind is two regimes, because each level fills its own
form: the departments' (the province's figures: GRDP, IIP, CPI, exports, ...) and the communes'
(only what a commune produces). The first deadlines are this plugin's proposal in the pattern of
regimes in force (TT 02/2023/TT-BTTTT: reporters by the 15th, units by the 16th): communes one
working day after the cut-off, the planning department's consolidation of them one more; the
departments two working days after the cut-off — each leaving at least one working day to the next
level as Art. 8 cl. 5 requires. Two working days for the communes (Khánh Hòa QĐ 01/2023) would leave
none before the 25th in February 2026, when Tết takes the week after the cut-off.
"""

from __future__ import annotations

from core.api import RegimeSpec, Unit, fold

from .forms import LEVELS, form, form_name, indicators_for

# (code suffix, frequency, Vietnamese name, period word for the outline)
_REGIMES = (
    ("monthly", "monthly", "Báo cáo tình hình kinh tế - xã hội hằng tháng", "tháng"),
    ("quarterly", "quarterly", "Báo cáo tình hình kinh tế - xã hội quý", "quý"),
    ("half_year", "half_year", "Báo cáo tình hình kinh tế - xã hội 6 tháng", "6 tháng"),
    ("nine_months", "nine_months", "Báo cáo tình hình kinh tế - xã hội 9 tháng", "9 tháng"),
    ("annual", "annual", "Báo cáo tình hình kinh tế - xã hội năm", "năm"),
)

# Each period kind is two regimes, one per level, because each level has its own form: the
# departments report the province's figures (Biểu 01/KTXH), the communes only what a commune
# produces (Biểu 02/KTXH-X). level → (code suffix, name suffix, deadline rules).
DEADLINES = {
    "province": (
        ("Sở, ban, ngành → UBND tỉnh (qua Sở Tài chính)", "department", "2wd"),
        ("UBND tỉnh → Chính phủ", "province", "day:25"),
    ),
    "commune": (
        ("Xã, phường, đặc khu → UBND tỉnh (qua Sở Tài chính)", "commune", "1wd"),
        ("Sở Tài chính tổng hợp → UBND tỉnh", "department", "+1wd"),
        ("UBND tỉnh → Chính phủ", "province", "day:25"),
    ),
}
LEVEL_CODES = {"province": ("", " của các sở, ban, ngành"), "commune": ("_commune", " của cấp xã")}

CONTENT = (
    "Đánh giá tình hình thực hiện các chỉ tiêu, nhiệm vụ phát triển kinh tế - xã hội trong kỳ của đơn vị, "
    "lĩnh vực: kết quả đạt được so với cùng kỳ năm trước và kế hoạch năm; tồn tại, hạn chế và nguyên nhân; "
    "nhiệm vụ, giải pháp trọng tâm kỳ tới; kiến nghị, đề xuất."
)

GUIDANCE = (
    "Đơn vị nhập số liệu các chỉ tiêu trên Hệ thống thông tin báo cáo của tỉnh (trên màn hình hoặc tải lên "
    "tệp Excel theo mẫu), viết nội dung báo cáo theo đề cương, ký số và gửi trước thời hạn. Số liệu tính "
    "theo kỳ chốt số liệu của Nghị định 09/2019/NĐ-CP (từ ngày 15 tháng trước đến ngày 14 tháng cuối kỳ). "
    "Sở Tài chính tiếp nhận, kiểm tra, trả lại báo cáo chưa đạt (nêu rõ lý do) và tổng hợp báo cáo của tỉnh."
)


def _outline(period: str) -> str:
    return "\n".join((
        f"I. TÌNH HÌNH KINH TẾ - XÃ HỘI {period.upper()}",
        "1. Kinh tế: tăng trưởng; sản xuất công nghiệp; thương mại, dịch vụ, du lịch; nông nghiệp, thủy sản",
        "2. Tài chính, ngân sách, đầu tư công; phát triển doanh nghiệp",
        "3. Văn hóa - xã hội: lao động, việc làm, giảm nghèo, y tế, giáo dục",
        "4. Quốc phòng, an ninh, trật tự an toàn giao thông",
        "II. TỒN TẠI, HẠN CHẾ VÀ NGUYÊN NHÂN",
        f"III. NHIỆM VỤ, GIẢI PHÁP TRỌNG TÂM {'KỲ' if period != 'năm' else 'NĂM'} TỚI",
        "IV. KIẾN NGHỊ, ĐỀ XUẤT",
    ))


def _forms(frequency: str, level: str) -> str:
    """The data form in words (component 10 of the regime); the form itself is ``RegimeSpec.form``."""
    lines = [form_name(frequency, level)]
    lines += [f"- {r['code']} {r['name']} ({r['unit_of_measure']})" for r in indicators_for(frequency, level)]
    return "\n".join(lines)


PLANNING_DEPARTMENT = "so tai chinh"  # since the 2025 merger of Sở Kế hoạch và Đầu tư into Sở Tài chính


def planning_unit_code(configured: str | None) -> str | None:
    """The configured planning department, else the current department named "Sở Tài chính"."""
    if configured:
        return configured
    departments = Unit.select().where((Unit.kind == "department") & Unit.valid_to.is_null())
    return next((u.code for u in departments if fold(u.name) == PLANNING_DEPARTMENT), None)


def regime_specs(planning_unit_code: str | None = None) -> list[RegimeSpec]:
    return [
        RegimeSpec(
            code=f"kinhte_xahoi.{suffix}{LEVEL_CODES[level][0]}", name=name + LEVEL_CODES[level][1],
            frequency=frequency, content=CONTENT, content_type="both", reporting_kinds=LEVELS[level][3],
            deadline_rules=DEADLINES[level], sending_methods=("system", "email"), cutoff_rule="decree",
            outline=_outline(period), data_forms=_forms(frequency, level), guidance=GUIDANCE,
            legal_issuer="Ủy ban nhân dân tỉnh", issuing_unit_kind="province",
            preparing_unit_code=planning_unit_code, form=form(frequency, level),
        )
        for level in ("province", "commune")
        for suffix, frequency, name, period in _REGIMES
    ]
