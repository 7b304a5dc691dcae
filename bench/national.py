"""National-scale synthetic data for the bench: 5,000 indicators and a tree of 4,000 units.

Everything here is clearly synthetic ("thử nghiệm", codes starting BX, groups T30–X39) and is
written only into the bench's own throw-away database. Rows are inserted in bulk (no audit
events): the point is the size of the catalogue and of the tree, not the way they got there.

Tree: 34 provinces (as many as since 01/07/2025) × 20 district-like units × 4–5 communes
= 4,000 units, under no common root, like real provinces. Catalogue: 50 groups (30 province,
10 district, 10 commune) × 100 indicators, names built from the words statistical tables use,
so that a search such as "dan so" finds a realistic share of them.
"""

from __future__ import annotations

import datetime as dt

PROVINCES, DISTRICTS_PER_PROVINCE, UNITS_TOTAL = 34, 20, 4000
INDICATORS_PER_GROUP = 100
GROUPS = [f"T{n}" for n in range(30, 60)] + [f"H{n}" for n in range(30, 40)] + [f"X{n}" for n in range(30, 40)]
LEVEL = {"T": "province", "H": "district", "X": "commune"}
TOPICS = ("Dân số", "Lao động có việc làm", "Diện tích gieo trồng", "Sản lượng lương thực", "Giá trị sản xuất",
          "Số hộ dân cư", "Tỷ lệ hộ nghèo", "Số trường học", "Số giường bệnh", "Vốn đầu tư thực hiện",
          "Thu ngân sách", "Chi ngân sách", "Số doanh nghiệp", "Tổng mức bán lẻ hàng hóa", "Số lượt khách du lịch",
          "Chiều dài đường giao thông", "Số thuê bao điện thoại", "Tỷ lệ trẻ em được tiêm chủng",
          "Số vụ tai nạn giao thông", "Diện tích rừng trồng mới")
QUALIFIERS = ("trung bình", "phân theo giới tính", "phân theo thành thị, nông thôn", "phân theo ngành kinh tế",
              "phân theo loại hình", "so với cùng kỳ", "theo giá hiện hành", "theo giá so sánh", "bình quân đầu người",
              "lũy kế từ đầu năm")
UNITS_OF_MEASURE = ("Người", "Hộ", "Ha", "Tấn", "Triệu đồng", "%", "Cơ sở", "Km", "Lượt")


def _bulk(model, rows, batch: int = 500) -> None:
    for start in range(0, len(rows), batch):
        model.insert_many(rows[start:start + batch]).execute()


def seed_units() -> int:
    """34 provinces, 680 district-like units, communes up to 4,000 units in all."""
    from core.db import transaction
    from core.models import Unit

    with transaction():
        _bulk(Unit, [{"code": f"BX{p:02d}", "name": f"Tỉnh Thử nghiệm {p:02d}", "kind": "province"}
                     for p in range(1, PROVINCES + 1)])
        provinces = dict(Unit.select(Unit.code, Unit.id).where(Unit.code.startswith("BX")
                                                                & (Unit.kind == "province")).tuples())
        _bulk(Unit, [{"code": f"BX{p:02d}.{d:02d}", "name": f"Huyện Thử nghiệm {p:02d}-{d:02d}", "kind": "district",
                      "parent": provinces[f"BX{p:02d}"], "valid_to": dt.date(2025, 6, 30)}
                     for p in range(1, PROVINCES + 1) for d in range(1, DISTRICTS_PER_PROVINCE + 1)])
        districts = dict(Unit.select(Unit.code, Unit.id).where(Unit.code.startswith("BX")
                                                                & (Unit.kind == "district")).tuples())
        communes_left = UNITS_TOTAL - PROVINCES - len(districts)
        rows, i = [], 0
        codes = sorted(districts)
        while len(rows) < communes_left:
            district = codes[i % len(codes)]
            n = i // len(codes) + 1
            # Half the communes were formed on 01/07/2025 (valid from then); the rest are older.
            rows.append({"code": f"{district}.{n:02d}", "name": f"Xã Thử nghiệm {district[2:]}-{n}",
                         "kind": "commune", "parent": districts[district],
                         "valid_from": dt.date(2025, 7, 1) if i % 2 else None})
            i += 1
        _bulk(Unit, rows)
    return PROVINCES + len(districts) + len(rows)


def seed_indicators() -> int:
    """50 groups × 100 current indicators = 5,000."""
    from core.db import transaction
    from core.i18n import fold
    from core.catalogue.indicators import Indicator, IndicatorGroup

    with transaction():
        _bulk(IndicatorGroup, [{"code": g, "name": f"Nhóm thử nghiệm {g}", "level": LEVEL[g[0]]} for g in GROUPS])
        group_ids = dict(IndicatorGroup.select(IndicatorGroup.code, IndicatorGroup.id)
                         .where(IndicatorGroup.code.in_(GROUPS)).tuples())
        rows = []
        for g_index, group in enumerate(GROUPS):
            for n in range(1, INDICATORS_PER_GROUP + 1):
                k = g_index * INDICATORS_PER_GROUP + n
                qualifier = QUALIFIERS[(k // len(TOPICS)) % len(QUALIFIERS)]
                name = f"{TOPICS[k % len(TOPICS)]} {qualifier} (thử nghiệm {k:04d})"
                rows.append({"code": f"{group}{n - 1:02d}", "version": 1, "name": name, "name_folded": fold(name),
                             "group": group_ids[group], "unit_of_measure": UNITS_OF_MEASURE[k % len(UNITS_OF_MEASURE)],
                             "value_type": "number", "aggregation": "sum", "levels": LEVEL[group[0]],
                             "source_act": "Dữ liệu thử nghiệm (bench)", "valid_from": dt.date(2025, 1, 1),
                             "is_current": True})
        _bulk(Indicator, rows)
    return len(rows)
