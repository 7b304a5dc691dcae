"""Demo data: the province of Quảng Trị as it is since 01/07/2025, a few departments,
and one account for each kind of user, with random passwords printed once.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from core import accounts
from core.access import Grant, Role
from core.db import transaction
from core.models import Unit

DATA = Path(__file__).with_name("data") / "units" / "quang_tri_2025_communes.csv"
TWO_LEVEL_FROM = dt.date(2025, 7, 1)
COMMUNE_KIND = {"xã": "commune", "phường": "commune", "đặc khu": "commune"}

# Provincial departments after the 2025 reorganisation (internal codes of this instance).
DEPARTMENTS = [
    ("QT.STC", "Sở Tài chính"),
    ("QT.SKHCN", "Sở Khoa học và Công nghệ"),
    ("QT.SYT", "Sở Y tế"),
    ("QT.SGDDT", "Sở Giáo dục và Đào tạo"),
    ("QT.SNNMT", "Sở Nông nghiệp và Môi trường"),
    ("QT.CTK", "Thống kê tỉnh Quảng Trị"),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    full_name: str
    unit: str
    role: str  # message key describing what the account is for


def load_units() -> Unit:
    """Create the province, its departments and its 78 communes; return the province."""
    with transaction():
        province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province", admin_code="44",
                               agency_code="000.00.00.H50", valid_from=TWO_LEVEL_FROM)
        for code, name in DEPARTMENTS:
            Unit.create(code=code, name=name, kind="department", parent=province, valid_from=TWO_LEVEL_FROM)
        with DATA.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                Unit.create(code=row["code"], name=row["name"], kind=COMMUNE_KIND[row["unit_type"]],
                            parent=province, admin_code=row["code"], valid_from=TWO_LEVEL_FROM)
    return province


def seed_demo() -> list[DemoLogin]:
    province = load_units()
    people = [
        ("quantri", "Nguyễn Văn An", province, True, "demo.role.admin", ()),
        ("sotaichinh", "Trần Thị Bình", Unit.get(Unit.code == "QT.STC"), False, "demo.role.department",
         ("unit_admin", "reporter", "receiver")),
        ("phuongdonghoi", "Lê Văn Cường", Unit.get(Unit.code == "18880"), False, "demo.role.commune",
         ("reporter",)),
    ]
    logins = []
    for username, full_name, unit, is_admin, role, grants in people:
        password = accounts.random_password()
        user = accounts.create_user(username, full_name, password, unit, is_admin=is_admin)
        with transaction():
            for code in grants:
                Grant.create(user=user, role=Role.get(Role.code == code), unit=unit)
        logins.append(DemoLogin(username, password, full_name, unit.name, role))
    return logins
