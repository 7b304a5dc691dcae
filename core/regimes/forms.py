"""Forms (biểu mẫu): versioned layouts of rows and columns, their formulas and validation rules,
and the narrative outline (đề cương) a report is written to.

A form version's layout is one JSON document (``definition``) — rows, columns, greyed cells,
rules, outline — checked as a whole when saved (``check_definition``) and frozen when published:
a report keeps the version it was opened with, so editing a published form means a new draft
version (``new_version``), as with regimes. Drafts are edited in place.

Rows are indicator rows (an indicator of the catalogue × a disaggregation option; empty option =
the total), headings (greyed across) or computed rows (a formula over other rows, per column).
Columns carry a value kind (plan, estimate, actual, official) and a period offset (this period,
the previous one, the same period last year, the year to date, the whole year...), and are input,
pre-filled read-only (from the figures store) or computed (a formula over other columns, per
row; ``accumulate``: the year to date so far plus this period's column). A column may be shown
only for some period indexes (scheme B of the Sở Công Thương forms: month 5 adds the 6-month
estimate). Formulas and rules are written in ``core.regimes.expressions`` and never evaluated as Python.

The engine that checks, compiles and runs a definition is ``core.regimes.form_engine``; this module
stores forms and versions and holds who may design them.
"""

from __future__ import annotations

import hashlib
import json
import re

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from core import audit
from core.db import CoreModel, transaction
from core.errors import BaocaoError, Forbidden, NotFound, ValidationError
from core.regimes.form_engine import (CompiledForm, FormDesignError, check_definition, clean_text, compile_form,
                              empty_definition, normalise)
from core.catalogue.indicators import Indicator
from core.i18n import fold
from core.models import Unit, User, utcnow
from core.regimes.periods import FREQUENCIES
from core.units.tree import ancestor_ids, is_valid

DRAFT, PUBLISHED, RETIRED = "draft", "published", "retired"
STATUSES = (DRAFT, PUBLISHED, RETIRED)

EDIT = "core.regime.edit"  # a form is component 10 of a regime: whoever drafts regimes designs forms
VIEW = "core.regime.view"

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,39}$")


class Form(CoreModel):
    code = CharField(max_length=40, unique=True)
    name = CharField(max_length=255)
    owner_unit = ForeignKeyField(Unit, on_delete="RESTRICT")
    frequency = CharField(max_length=20, default="")  # the period kind it is made for; "" = any
    created_at = DateTimeField(default=utcnow)
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

    def __str__(self):
        return f"{self.code} — {self.name}"


class FormVersion(CoreModel):
    form = ForeignKeyField(Form, backref="versions", on_delete="CASCADE")
    version = IntegerField()
    status = CharField(max_length=12, default=DRAFT)
    definition = TextField(default="{}")
    updated_at = DateTimeField(default=utcnow)
    updated_by = ForeignKeyField(User, null=True, on_delete="SET NULL")
    published_at = DateTimeField(null=True)
    published_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="published_form_versions")

    class Meta:
        indexes = ((("form", "version"), True),)

    def data(self) -> dict:
        return json.loads(self.definition or "{}")

    def compiled(self) -> "CompiledForm":
        return compile_form(self.definition)


# -- storage: forms and versions --------------------------------------------------------------

def indicator_codes(definition: dict) -> tuple[str, ...]:
    """The codes of the indicators a definition's rows name, sorted."""
    return tuple(sorted({r.get("indicator") for r in definition.get("rows") or [] if r.get("indicator")}))


def current_indicators(definition: dict) -> dict[str, Indicator]:
    """The catalogue's current version of every indicator a definition's rows name."""
    return current_of(indicator_codes(definition))


def current_of(codes: tuple[str, ...]) -> dict[str, Indicator]:
    """The catalogue's current version of each of ``codes`` (sorted, as ``indicator_codes`` gives them)."""
    if not codes:
        return {}
    query = Indicator.select().where(Indicator.code.in_(list(codes)) & Indicator.valid_to.is_null())
    return {i.code: i for i in query}


def can_edit(access, form: Form) -> bool:
    return access.allowed(EDIT, ancestor_ids(form.owner_unit_id))


def can_view(access, form: Form) -> bool:
    return access.allowed(VIEW, ancestor_ids(form.owner_unit_id)) or can_edit(access, form)


def visible_forms(access, q: str = ""):
    found = []
    for form in Form.select(Form, Unit).join(Unit).order_by(Form.code):
        if not can_view(access, form):
            continue
        if q and fold(q) not in fold(f"{form.code} {form.name}"):
            continue
        found.append(form)
    return found


def get_form(access, form_id: int) -> Form:
    form = Form.get_or_none(Form.id == form_id)
    if form is None or not can_view(access, form):
        raise NotFound()  # a form the user may not see does not exist for them (ACL-02)
    return form


def versions(form: Form) -> list[FormVersion]:
    return list(FormVersion.select().where(FormVersion.form == form).order_by(FormVersion.version.desc()))


def get_version(version_id: int) -> FormVersion:
    version = FormVersion.get_or_none(FormVersion.id == version_id)
    if version is None:
        raise NotFound()
    return version


def latest_published(form_id: int) -> FormVersion | None:
    return (FormVersion.select().where((FormVersion.form == form_id) & (FormVersion.status == PUBLISHED))
            .order_by(FormVersion.version.desc()).first())


def draft_of(form: Form) -> FormVersion | None:
    return FormVersion.get_or_none((FormVersion.form == form) & (FormVersion.status == DRAFT))


def _check_edit(access, form: Form) -> None:
    if not can_edit(access, form):
        raise Forbidden()


def create_form(access, code: str, name: str, owner_unit_id: int, *, frequency: str = "",
                definition: dict | None = None) -> Form:
    """A new form with an empty (or given) draft version 1."""
    code, name = clean_text(code, 40).upper(), clean_text(name, 255)
    errors = {}
    if not CODE_RE.match(code):
        errors["code"] = "forms.error.code"
    elif Form.select().where(Form.code == code).exists():
        errors["code"] = "forms.error.code_taken"
    if not name:
        errors["name"] = "forms.error.name"
    if frequency and frequency not in FREQUENCIES:
        errors["frequency"] = "forms.error.frequency"
    unit = Unit.get_or_none(Unit.id == owner_unit_id)
    if unit is None or not is_valid(unit):
        errors["owner_unit"] = "forms.error.owner_unit"
    elif not access.allowed(EDIT, ancestor_ids(unit.id)):
        raise Forbidden()
    if errors:
        raise ValidationError(errors)
    d = normalise(definition or empty_definition())
    if definition is not None:
        problems = check_definition(d, indicators=current_indicators(d))
        if problems:
            raise FormDesignError(problems)
    actor = access.actor
    with transaction():
        form = Form.create(code=code, name=name, owner_unit=unit, frequency=frequency, created_by=actor)
        FormVersion.create(form=form, version=1, definition=_dump(d), updated_by=actor)
        audit.record("form.created", actor=actor, unit=form.owner_unit_id, object_type="form", object_id=form.id, details={"code": code})
    return form


def install_form(code: str, name: str, owner_unit_id: int, definition: dict, *, frequency: str = "") -> Form:
    """A form shipped by a plugin: created with its definition published as version 1 unless its
    code exists (an administrator's later versions are never touched). The definition must be
    sound against the catalogue as it is now."""
    existing = Form.get_or_none(Form.code == code)
    if existing is not None:
        return existing
    d = normalise(definition)
    problems = check_definition(d, indicators=current_indicators(d), publishing=True)
    if problems:
        raise FormDesignError(problems)
    with transaction():
        form = Form.create(code=code, name=name, owner_unit=owner_unit_id, frequency=frequency)
        now = utcnow()
        FormVersion.create(form=form, version=1, status=PUBLISHED, definition=_dump(d), published_at=now)
        audit.record("form.published", unit=owner_unit_id, object_type="form", object_id=form.id,
                     details={"code": code, "version": 1})
    return form


def _dump(d: dict) -> str:
    return json.dumps(d, ensure_ascii=False, sort_keys=True)


def save_draft(access, form_id: int, definition: dict, *, expected: str | None = None) -> FormVersion:
    """Replace the draft's definition as a whole. ``expected``: the draft's ``updated_at`` the
    designer started from; another save in between is refused (nothing lost: the caller keeps the
    input). An unsound definition is refused with every problem."""
    form = get_form(access, form_id)
    _check_edit(access, form)
    d = normalise(definition)
    problems = check_definition(d, indicators=current_indicators(d))
    if problems:
        raise FormDesignError(problems)
    with transaction():
        draft = draft_of(form)
        if draft is None:
            raise BaocaoError("forms.error.no_draft")
        if expected is not None and expected != stamp(draft):
            raise BaocaoError("forms.error.stale_draft")
        text = _dump(d)
        if text == draft.definition:
            return draft
        draft.definition, draft.updated_at, draft.updated_by = text, utcnow(), access.actor
        draft.save()
        audit.record("form.draft_saved", actor=access.actor, unit=form.owner_unit_id, object_type="form", object_id=form.id, details={"version": draft.version})
    return draft


def stamp(version: FormVersion) -> str:
    """What optimistic locking of a draft compares: a hash of its last save."""
    return hashlib.sha256(f"{version.updated_at.isoformat()}|{version.definition}".encode()).hexdigest()[:16]


def publish(access, form_id: int) -> FormVersion:
    """Freeze the draft as the form's published version; the previous published one is retired
    (reports opened with it keep it)."""
    form = get_form(access, form_id)
    _check_edit(access, form)
    draft = draft_of(form)
    if draft is None:
        raise BaocaoError("forms.error.no_draft")
    d = json.loads(draft.definition)
    problems = check_definition(d, indicators=current_indicators(d), publishing=True)
    if problems:
        raise FormDesignError(problems)
    with transaction():
        (FormVersion.update(status=RETIRED)
         .where((FormVersion.form == form) & (FormVersion.status == PUBLISHED)).execute())
        draft.status, draft.published_at, draft.published_by = PUBLISHED, utcnow(), access.actor
        draft.save()
        audit.record("form.published", actor=access.actor, unit=form.owner_unit_id, object_type="form", object_id=form.id, details={"version": draft.version})
    return draft


def new_version(access, form_id: int) -> FormVersion:
    """A draft n+1 copied from the latest version (or the existing draft)."""
    form = get_form(access, form_id)
    _check_edit(access, form)
    with transaction():
        existing = draft_of(form)
        if existing is not None:
            return existing
        latest = FormVersion.select().where(FormVersion.form == form).order_by(FormVersion.version.desc()).first()
        draft = FormVersion.create(form=form, version=latest.version + 1, definition=latest.definition,
                                   updated_by=access.actor)
        audit.record("form.version_created", actor=access.actor, unit=form.owner_unit_id, object_type="form", object_id=form.id, details={"version": draft.version})
    return draft


def copy_form(access, form_id: int, code: str, name: str, owner_unit_id: int | None = None) -> Form:
    """A new form whose draft 1 is the latest version of another (which the actor may view)."""
    source = get_form(access, form_id)
    latest = FormVersion.select().where(FormVersion.form == source).order_by(FormVersion.version.desc()).first()
    owner = owner_unit_id or (access.actor.unit_id if access.actor and access.actor.unit_id else source.owner_unit_id)
    with transaction():  # one operation: no empty copy is left if the second step fails
        form = create_form(access, code, name, owner, frequency=source.frequency)
        FormVersion.update(definition=latest.definition).where(FormVersion.form == form).execute()
        audit.record("form.copied", actor=access.actor, unit=form.owner_unit_id, object_type="form", object_id=form.id, details={"from": source.code})
    return form
