"""The indicators each person follows on their dashboard (issue 14 item 5, web/routes/dashboard.py).

A personal preference, not a business record: no audit event. At most ``MAX_CHOSEN`` codes, kept in
the order chosen; a code that has left the catalogue since is dropped when read.
"""

from __future__ import annotations

from peewee import CharField, DateTimeField, ForeignKeyField

from core.catalogue.indicators import Indicator
from core.db import CoreModel, transaction
from core.errors import ValidationError
from core.models import User, utcnow

MAX_CHOSEN = 6


class DashboardChoice(CoreModel):
    user = ForeignKeyField(User, unique=True, on_delete="CASCADE")
    codes = CharField(max_length=100)  # "KX0301,KX0304": at most six codes of at most ten characters
    updated_at = DateTimeField(default=utcnow)


def chartable_codes(codes) -> list[str]:
    """Those of ``codes`` that are current indicators holding numbers (not text), in the given order."""
    codes = [c for c in dict.fromkeys(str(c).strip().upper() for c in codes) if c and len(c) <= 10]
    if not codes:
        return []
    found = {i.code for i in Indicator.select(Indicator.code).where(
        Indicator.code.in_(codes) & Indicator.is_current & (Indicator.value_type != "text"))}
    return [c for c in codes if c in found]


def chosen(user_id: int) -> list[str] | None:
    """The codes the person chose, or None if they never chose (the dashboard then picks)."""
    row = DashboardChoice.get_or_none(DashboardChoice.user == user_id)
    if row is None:
        return None
    return chartable_codes(c for c in row.codes.split(",") if c)


def choose(user_id: int, codes) -> list[str]:
    """Remember ``codes`` (a list) for the person. More than ``MAX_CHOSEN`` raises ValidationError
    (field "codes"); unknown codes are left out. An empty choice is remembered too."""
    codes = [str(c).strip().upper() for c in codes if str(c).strip()]
    if len(dict.fromkeys(codes)) > MAX_CHOSEN:
        raise ValidationError({"codes": "dashboard.choose.too_many"}, limit=MAX_CHOSEN)
    kept = chartable_codes(codes)
    with transaction():
        updated = (DashboardChoice.update(codes=",".join(kept), updated_at=utcnow())
                   .where(DashboardChoice.user == user_id).execute())
        if not updated:
            DashboardChoice.create(user=user_id, codes=",".join(kept))
    return kept
