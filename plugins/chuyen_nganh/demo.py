"""The demo's sector reporting (hook ``seed_demo``): Sở Nông nghiệp và Môi trường has applied to run
the agriculture sector's reporting for five communes of the former Hướng Hóa district, and the
application waits for the operator (``quantri``) — so the whole flow of docs/sector_reporting.md can
be played from the first screen: decide, then the department keeps its catalogue, forms and regimes.

The application is made by the department's demo officer (``sonongnghiep``, core/demo.py, who holds
the role ``chuyen_nganh.sector_admin`` there) through ``delegation.apply``: a real application,
checked, audited and in the history like one typed in the form.
"""

from __future__ import annotations

from core.api import Unit, User, unit_chain

from . import delegation as svc
from .rights import APPLY

DEPARTMENT = "QT.SNNMT"  # Sở Nông nghiệp và Môi trường (core/demo.py)
APPLICANT = "sonongnghiep"
SECTOR, SECTOR_NAME = "nn", "Nông nghiệp"
# Xã Khe Sanh has a demo officer (xakhesanh); Phường Đồng Hới (phuongdonghoi) stays outside.
SCOPE = ("Xã Khe Sanh", "Xã Hướng Lập", "Xã Hướng Phùng", "Xã Tân Lập", "Xã Lao Bảo")
PURPOSE = ("Số liệu minh họa (demo): theo dõi hằng tháng sản xuất trồng trọt, chăn nuôi tại các xã vùng "
           "Hướng Hóa, nơi hệ thống báo cáo của Bộ chưa đến cấp xã.")


class _Applicant:
    """The department's officer as ``delegation.apply`` asks: who acts, and the right to apply at the
    officer's own department only — what the demo's role there gives (the seed runs outside a
    request, and core.api has no way to build a person's rights there)."""

    def __init__(self, user: User, unit_ids: set[int]):
        self.actor, self._unit_ids = user, unit_ids

    def allowed(self, code: str, chain=None) -> bool:
        return code == APPLY and bool(self._unit_ids & set(chain or ()))


def seed() -> svc.Delegation | None:
    """Put in the department's application; None when the demo lacks the department or its officer."""
    department = Unit.get_or_none((Unit.code == DEPARTMENT) & Unit.valid_to.is_null())
    user = User.get_or_none(User.username == APPLICANT)
    communes = {u.name: u.id for u in Unit.select().where(Unit.name.in_(SCOPE) & Unit.valid_to.is_null())}
    if department is None or user is None or len(communes) != len(SCOPE) or department.id not in unit_chain(user.unit_id):
        return None
    form = svc.Application(department_unit_id=str(department.id), sector=SECTOR, sector_name=SECTOR_NAME,
                           scope_unit_ids=tuple(str(communes[name]) for name in SCOPE), purpose=PURPOSE,
                           administrator_ids=(str(user.id),))
    return svc.apply(_Applicant(user, {department.id}), form)
