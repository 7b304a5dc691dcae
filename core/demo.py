"""Demo data: the province of Quảng Trị as it is since 01/07/2025, a few departments,
and one account for each kind of user, with random passwords printed once; the communes' last month
of reporting is played back by ``core.demo_daily``.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass

from core import demo_daily
from core.accounts import login as accounts
from core.accounts.access import Grant, Role
from core.db import transaction
from core.models import Unit, User
from core.units import history

TWO_LEVEL_FROM = dt.date(2025, 7, 1)
# The demo's /.well-known/security.txt contact (setting security_contact, set by `baocao demo`): a
# reserved example domain (RFC 2606), so no real mailbox receives what a demo's visitor reports.
SECURITY_CONTACT = "mailto:antt@quangtri.example"
SECTOR_APPLICANT = "sonongnghiep"  # Sở Nông nghiệp và Môi trường's officer (plugins/chuyen_nganh/demo.py)
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


@dataclass(frozen=True)
class DemoData:
    """What ``baocao demo`` tells the person who ran it: the logins and the .p12 files' password."""

    logins: list[DemoLogin]
    certs_password: str
    ca: object = None  # core.demo_pki.DemoCA: the plugins' demo seeds may issue from it


def load_units() -> Unit:
    """Create the province, its departments and its 78 communes; return the province."""
    with transaction():
        province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province", admin_code="44",
                               agency_code="000.00.00.H50", valid_from=TWO_LEVEL_FROM)
        for code, name in DEPARTMENTS:
            Unit.create(code=code, name=name, kind="department", parent=province, valid_from=TWO_LEVEL_FROM)
        with history.DATA.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                Unit.create(code=row["code"], name=row["name"], kind=COMMUNE_KIND[row["unit_type"]],
                            parent=province, admin_code=row["code"], valid_from=TWO_LEVEL_FROM)
    # The three-level tree valid until 30/06/2025 and the changes of 01/07/2025 (issue 4).
    from core.units.history import load_quang_tri_history

    load_quang_tri_history()
    return province


def seed_demo(settings, certs_folder=None) -> DemoData:
    province = load_units()
    # The shipped indicator groups and coded rows, so the catalogue screens are not empty (issue 4).
    from core.catalogue.indicators import load_reference

    load_reference()
    people = [
        ("quantri", "Nguyễn Văn An", province, True, "demo.role.admin", ()),
        ("sotaichinh", "Trần Thị Bình", Unit.get(Unit.code == "QT.STC"), False, "demo.role.department",
         # The planning department (since 2025 Sở Tài chính) drafts the socio-economic regimes ...
         ("unit_admin", "reporter", "receiver", "regime_editor")),
        # ... which the provincial People's Committee issues (Decree 09/2019 Art. 11): in the demo the
        # province's account "quantri" (a system administrator, holding every right) issues them.
        # A commune issues ad-hoc requests to organisations and individuals in the commune.
        ("phuongdonghoi", "Lê Văn Cường", Unit.get(Unit.code == "18880"), False, "demo.role.commune",
         ("reporter", "regime_editor", "regime_issuer")),
    ]
    # The province's leader and the officers of three communes late with last month's report (core.demo_daily).
    people += [(p.username, p.full_name, Unit.get((Unit.name == p.unit_name) & Unit.valid_to.is_null()), False,
                p.role, p.grants) for p in demo_daily.PEOPLE]
    # The department of agriculture's officer who applies to run its sector's reporting (plugin
    # chuyen_nganh, whose own seed puts the application in): the right to apply only; the delegated
    # administrator's rights come with the province's decision, not from the demo.
    people.append((SECTOR_APPLICANT, "Phạm Thị Dung", Unit.get(Unit.code == "QT.SNNMT"), False, "demo.role.department",
                   ("chuyen_nganh.sector_admin",)))
    logins = []
    for username, full_name, unit, is_admin, role, grants in people:
        password = accounts.random_password()
        user = accounts.create_user(username, full_name, password, unit, is_admin=is_admin)
        with transaction():
            for code in grants:
                granted = Role.get_or_none(Role.code == code)
                if granted is not None:  # a plugin's role exists only when the plugin is there
                    Grant.create(user=user, role=granted, unit=unit)
        logins.append(DemoLogin(username, password, full_name, unit.name, role))
    # Unit groups for choosing reporting units in a regime.
    from core.regimes.regimes import save_group

    current = [u for u in Unit.select().where(Unit.parent == province.id) if u.valid_to is None]
    save_group("SO_NGANH", "Các sở, ban, ngành", [u.id for u in current if u.kind == "department"])
    save_group("UBND_XA", "UBND cấp xã", [u.id for u in current if u.kind == "commune"])
    # Signing (issue 6): demo CAs pinned, a certificate and a .p12 file for every account, the
    # commune's seal — the demo keeps require_signature on, as a real installation.
    from core.demo_pki import seed_demo_pki

    # The seal's key is encrypted under these settings' secret key; the .p12 files go to certs_folder.
    password, ca = seed_demo_pki(settings, certs_folder)
    return DemoData(logins, password, ca)


# The monthly socio-economic regimes: the departments' and the communes' (each level its own form).
DEMO_REGIMES = ("kinhte_xahoi.monthly", "kinhte_xahoi.monthly_commune")
# Not a real decision: the province's own number is unknown (legal.md), and the demo says so.
DEMO_LEGAL_BASIS = {"legal_number": "Số minh họa 01/QĐ-DEMO", "legal_issuer": "UBND tỉnh Quảng Trị (bản trình diễn)"}


def issue_demo_regimes(pm, settings, today: dt.date) -> int:
    """Load the plugins' regimes and issue the monthly socio-economic ones with their forms, so the
    departments and communes of the demo have reports to fill (issue 5); the communes' one since last
    month, which is played back (``core.demo_daily``). The quarterly and longer ones stay the plugin's
    drafts for the administrator to complete and issue. Returns the reports opened."""
    from core.accounts.permissions import core_access
    from core.regimes.regimes import Regime, load_plugin_regimes, work_calendar
    from core.reporting.opening import issue_and_open

    load_plugin_regimes(pm, settings)
    access = core_access(User.get(User.username == "quantri"))
    calendar = work_calendar(settings)
    opened_reports = 0
    for code in DEMO_REGIMES:
        regime = Regime.get_or_none((Regime.code == code) & (Regime.status == "draft"))
        if regime is None or regime.form_id is None:
            continue
        # The communes' regime took effect when last month's window opened, so the demo has a month
        # behind it: reports accepted, one waiting for review, three communes late (core.demo_daily).
        issued_on = demo_daily.issue_day(regime, calendar, today) if code == demo_daily.REGIME else today
        # The planning department receives the communes' and departments' reports and consolidates
        # them for the province (the provincial regulation's practice); its consolidated report then
        # goes up to the province.
        Regime.update(legal_date=issued_on.replace(month=1, day=5), receiving_unit=regime.preparing_unit_id or
                      regime.receiving_unit_id, **DEMO_LEGAL_BASIS).where(Regime.id == regime.id).execute()
        if issued_on != today:
            opened_reports += demo_daily.issue_with_last_month(access, regime.id, calendar, today)
            continue
        _, opened = issue_and_open(access, regime.id, calendar=calendar, today=today)
        opened_reports += opened.reports
    demo_daily.follow_indicators()
    return opened_reports
