"""The delegation of sector reporting (Điều 6.3): a department's application, the province's
decision, and every step taken on it. Tables ``chuyen_nganh_*`` (migrations/).

Units and users are referred to by id, not by foreign key: the core's tables are the core's, and a
delegation's record must outlive whatever happens to an account.
"""

from __future__ import annotations

import json

from peewee import BlobField, CharField, DateField, DateTimeField, IntegerField, TextField

from core.api import plugin_base, utcnow

Base = plugin_base("chuyen_nganh")

STATUSES = ("applied", "returned", "approved", "suspended", "revoked")
# What a person sees: "expired" is not stored, it is an approved or suspended delegation past valid_to.
SHOWN_STATUSES = STATUSES + ("expired",)


class Delegation(Base):  # chuyen_nganh_delegation
    department_unit_id = IntegerField(index=True)
    sector = CharField(max_length=20, index=True)  # the sector's code in the plugin's namespace, "nn"
    sector_name = CharField(max_length=255)
    scope = TextField(default="{}")  # JSON {"unit_ids": [...], "kinds": [...], "group_ids": [...]}
    purpose = TextField(default="")
    administrators = TextField(default="[]")  # JSON: the requested administrators' user ids
    status = CharField(max_length=12, default="applied", index=True)
    applicant_id = IntegerField()
    applied_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    return_reason = TextField(default="")  # the operator's latest request for changes
    decision_number = CharField(max_length=60, default="")
    decision_date = DateField(null=True)
    signer_name = CharField(max_length=255, default="")
    signer_title = CharField(max_length=255, default="")
    valid_from = DateField(null=True)
    valid_to = DateField(null=True)
    status_reason = TextField(default="")  # why it was suspended, resumed or revoked (latest)

    @property
    def scope_selector(self) -> dict:
        return load_scope(self.scope)

    @property
    def administrator_ids(self) -> list[int]:
        try:
            value = json.loads(self.administrators or "[]")
        except ValueError:
            return []
        return [int(v) for v in value if isinstance(v, int) or (isinstance(v, str) and v.isdigit())]


class DelegationFile(Base):  # chuyen_nganh_delegation_file: the decision's PDF
    delegation_id = IntegerField(index=True)
    filename = CharField(max_length=255)
    size = IntegerField()
    sha256 = CharField(max_length=64)
    content = BlobField()
    uploaded_at = DateTimeField(default=utcnow)
    uploaded_by = IntegerField()


class DelegationStep(Base):  # chuyen_nganh_delegation_step: the history, one row per step
    delegation_id = IntegerField(index=True)
    at = DateTimeField(default=utcnow)
    actor_id = IntegerField(null=True)
    actor_name = CharField(max_length=255, default="")
    action = CharField(max_length=20)
    reason = TextField(default="")
    details = TextField(default="{}")  # JSON


def load_scope(text) -> dict:
    """The stored scope as three clean lists (a damaged value reads as an empty scope)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        value = {}
    if not isinstance(value, dict):
        value = {}

    def ints(v):
        return sorted({int(x) for x in v if isinstance(x, int)}) if isinstance(v, list) else []

    kinds = value.get("kinds")
    return {"unit_ids": ints(value.get("unit_ids")), "group_ids": ints(value.get("group_ids")),
            "kinds": sorted({k for k in kinds if isinstance(k, str)}) if isinstance(kinds, list) else []}
