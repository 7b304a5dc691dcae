"""Feedback and incidents (regulation Điều 9.1c, 9.4): any person reports a problem ("Báo lỗi / sự
cố") or a proposal ("Góp ý / đề xuất") to the operator, who answers it.

A report (``Feedback``) carries a title, a description, the page of the system it concerns (a path
on this site, nothing else) and at most one screenshot, PNG or JPEG, checked by its magic bytes and
stored like a report's annex: under ``settings.files_root()`` with a generated name, never served by
its path, its SHA-256 recorded and checked again when it is read. The unit kept with it is the
unit the person belonged to when filing, so a later move does not rewrite the usage report.

The operator — system administrators, ``core.feedback.admin`` (scope "system") — works a queue:
filtered by status, kind, unit and assignee; each item gets an assignee (an active administrator),
a thread of replies (the reporter reads them and answers while the item is open) and status changes
(new → in progress → done / declined, and back). Every change is one transaction with its audit
event (``feedback.*``) and, when someone other than the reporter made it, a notice to the reporter.

Notices live in ``FeedbackNotice``, not in ``core.reporting.notifications.Notification``: that
table belongs to the report workflow (every row names a report, is worded from the report's names
and opens the report), so a feedback row there would break its inbox, bell and the home work list.
The reporter reads them on the "Phản ánh, góp ý" page; opening the item marks them read.
No e-mail is sent: the workflow's e-mail path words report transitions only.

Anyone else asking for an item — another person, an id that does not exist — gets ``NotFound``:
whether an item exists is not told to whoever may not read it.

``counts_by_unit_month`` is what the usage report (Điều 9.3c) reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from peewee import JOIN, BigIntegerField, BooleanField, Case, CharField, Check, DateTimeField, ForeignKeyField, \
    TextField, fn

from core import audit, clock
from core.db import CoreModel, Prepared, is_sqlite, transaction
from core.errors import BaocaoError, Forbidden, NotFound, ValidationError
from core.i18n import core_catalog, fold
from core.models import Unit, User, utcnow

ADMIN = "core.feedback.admin"
KINDS = ("problem", "proposal")
STATUSES = ("new", "in_progress", "done", "declined")
OPEN = ("new", "in_progress")
ENTRY_KINDS = ("reply", "status", "assign")
# Message keys, looked up whole: the screens never build a key from a value.
KIND_LABELS = {"problem": "feedback.kind.problem", "proposal": "feedback.kind.proposal"}
STATUS_LABELS = {"new": "feedback.status.new", "in_progress": "feedback.status.in_progress",
                 "done": "feedback.status.done", "declined": "feedback.status.declined"}
MAX_TITLE = 200
MAX_DESCRIPTION = 5_000
MAX_REPLY = 5_000
MAX_PAGE = 500
MAX_FILENAME = 255
PAGE_SIZE = 200
# extension → (content type, magic bytes at the start of the file): both must agree, so a renamed
# file of another kind is refused (as ``core.reporting.data.ATTACHMENT_TYPES``).
SCREENSHOT_TYPES = {
    ".png": ("image/png", b"\x89PNG\r\n\x1a\n"),
    ".jpg": ("image/jpeg", b"\xff\xd8\xff"),
    ".jpeg": ("image/jpeg", b"\xff\xd8\xff"),
}
# A screenshot travels in an ordinary form, whose body the web layer caps at 10 MB
# (web.middleware.MAX_FORM_BYTES); below that, a file too big is refused here with the form's text
# kept. Within it, the attachment limit of the settings applies as to a report's annex.
SCREENSHOT_MAX_MB = 8


class Feedback(CoreModel):
    kind = CharField(max_length=10, constraints=[Check("kind IN ('problem', 'proposal')")])
    title = CharField(max_length=MAX_TITLE)
    description = TextField()
    page = CharField(max_length=MAX_PAGE, default="")  # a path on this site, or ""
    status = CharField(max_length=12, default="new",
                       constraints=[Check("status IN ('new', 'in_progress', 'done', 'declined')")])
    reporter = ForeignKeyField(User, backref="+", on_delete="RESTRICT")
    unit = ForeignKeyField(Unit, backref="+", on_delete="RESTRICT")  # the reporter's unit when filing
    assignee = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    # True while the reporter's message is the latest word: the operator owes an answer.
    awaiting_answer = BooleanField(default=False)
    screenshot_name = CharField(max_length=MAX_FILENAME, default="")
    screenshot_stored = CharField(max_length=80, null=True, unique=True)
    screenshot_sha256 = CharField(max_length=64, default="")
    screenshot_size = BigIntegerField(null=True)
    screenshot_type = CharField(max_length=40, default="")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    closed_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("status", "updated_at"), False), (("reporter", "created_at"), False),
                   (("unit", "created_at"), False), (("created_at",), False))


class FeedbackEntry(CoreModel):
    """One step of an item's thread: a reply (which may also set the status), a status change, or
    an assignment."""

    feedback = ForeignKeyField(Feedback, backref="+", on_delete="CASCADE")
    author = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    kind = CharField(max_length=10, constraints=[Check("kind IN ('reply', 'status', 'assign')")])
    text = TextField(default="")
    status = CharField(max_length=12, default="")  # the status this step set; "" when unchanged
    assignee = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("feedback", "created_at"), False),)


class FeedbackNotice(CoreModel):
    """What a person is told of a step someone else took on an item, until they open it: the
    reporter of the operators' steps, the operators of the reporter's answers."""

    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    feedback = ForeignKeyField(Feedback, backref="+", on_delete="CASCADE")
    entry = ForeignKeyField(FeedbackEntry, backref="+", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)
    read_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "read_at"), False), (("feedback", "user"), False))


@dataclass(frozen=True)
class MonthCounts:
    problems: int = 0
    proposals: int = 0

    @property
    def total(self) -> int:
        return self.problems + self.proposals


# -- reading input --------------------------------------------------------------------------------

def _line(text: str) -> str:
    """One line of text: control characters (a NUL PostgreSQL cannot store, a pasted newline) become
    spaces, runs of spaces one."""
    text = unicodedata.normalize("NFC", text or "")
    return " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in text).split())


def _block(text: str) -> str:
    """Text with its lines kept; other control characters dropped."""
    text = unicodedata.normalize("NFC", (text or "").replace("\r\n", "\n").replace("\r", "\n"))
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc").strip()


def clean_page(value: str) -> str | None:
    """A path on this site ("/reports/12?tab=a"), "" for none, or None when it is anything else
    (another site, "//host", "javascript:", a backslash, a control character, too long)."""
    value = (value or "").strip()
    if not value:
        return ""
    if len(value) > MAX_PAGE or not value.startswith("/") or value.startswith("//"):
        return None
    if any(c == "\\" or c.isspace() or unicodedata.category(c) == "Cc" for c in value):
        return None
    return value


def screenshot_limit_mb(settings) -> int:
    return max(1, min(int(settings.attachment_max_mb), SCREENSHOT_MAX_MB))


def check_screenshot(filename: str, data: bytes, settings) -> tuple[str, str]:
    """(clean file name, content type) of an acceptable screenshot; else a ``BaocaoError`` saying
    why: empty, too big, not .png/.jpg/.jpeg, or content that is not what its name says."""
    name = os.path.basename((filename or "").replace("\\", "/")).strip()[:MAX_FILENAME]
    name = _line(name) or "screenshot"
    ext = os.path.splitext(name)[1].lower()
    limit_mb = screenshot_limit_mb(settings)
    if not data:
        raise BaocaoError("feedback.error.file_empty")
    if len(data) > limit_mb * 1024 * 1024:
        raise BaocaoError("feedback.error.file_too_big", mb=limit_mb)
    if ext not in SCREENSHOT_TYPES:
        raise BaocaoError("feedback.error.file_type", types=", ".join(sorted(SCREENSHOT_TYPES)))
    content_type, magic = SCREENSHOT_TYPES[ext]
    if not data.startswith(magic):
        raise BaocaoError("feedback.error.file_content", file=name, ext=ext)
    return name, content_type


def screenshot_path(root: Path, stored_name: str) -> Path:
    return root / "feedback" / stored_name[:2] / stored_name


# -- who may see what ------------------------------------------------------------------------------

def is_operator(access) -> bool:
    return access.allowed(ADMIN)


def _require_operator(access) -> None:
    if not is_operator(access):
        raise Forbidden()


def get(access, feedback_id: int) -> Feedback:
    """The item, for its reporter or an operator; NotFound for anyone else."""
    actor = access.actor
    item = (Feedback.select(Feedback, Unit).join(Unit, on=(Feedback.unit == Unit.id))
            .where(Feedback.id == feedback_id).first())
    if item is None or actor is None or (item.reporter_id != actor.id and not is_operator(access)):
        raise NotFound()
    return item


# -- filing ----------------------------------------------------------------------------------------

def submit(access, *, kind: str, title: str, description: str, page: str = "",
           screenshot: tuple[str, bytes] | None = None, settings) -> Feedback:
    """File a problem or a proposal. Every field is checked before anything is stored; a refusal
    is one ``ValidationError`` naming each field at fault (``screenshot`` among them)."""
    actor = access.actor
    if actor is None:
        raise Forbidden()
    title, description = _line(title), _block(description)
    errors: dict[str, str] = {}
    params: dict = {"title_limit": MAX_TITLE, "description_limit": MAX_DESCRIPTION}
    if kind not in KINDS:
        errors["kind"] = "feedback.error.kind"
    if not title:
        errors["title"] = "feedback.error.title_required"
    elif len(title) > MAX_TITLE:
        errors["title"] = "feedback.error.title_long"
    if not description:
        errors["description"] = "feedback.error.description_required"
    elif len(description) > MAX_DESCRIPTION:
        errors["description"] = "feedback.error.description_long"
    clean = clean_page(page)
    if clean is None:
        errors["page"] = "feedback.error.page"
    file = None
    if screenshot is not None:
        try:
            file = (*check_screenshot(screenshot[0], screenshot[1], settings), screenshot[1])
        except BaocaoError as exc:
            errors["screenshot"] = exc.key
            params.update(exc.params)
    if errors:
        raise ValidationError(errors, **params)

    stored = path = None
    if file is not None:
        stored = secrets.token_hex(16)
        path = screenshot_path(settings.files_root(), stored)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".part")
        temp.write_bytes(file[2])
        os.replace(temp, path)
    try:
        with transaction():
            now = utcnow()
            item = Feedback.create(kind=kind, title=title, description=description, page=clean,
                                   reporter=actor.id, unit=actor.unit_id, created_at=now, updated_at=now)
            details = {"kind": kind}
            if file is not None:
                name, content_type, data = file
                digest = hashlib.sha256(data).hexdigest()
                (Feedback.update(screenshot_name=name, screenshot_stored=stored, screenshot_sha256=digest,
                                 screenshot_size=len(data), screenshot_type=content_type)
                 .where(Feedback.id == item.id).execute())
                details.update(file=name, sha256=digest, size=len(data))
            audit.record("feedback.created", actor=actor, unit=actor.unit_id, object_type="feedback",
                         object_id=item.id, details=details)
    except Exception:
        if path is not None:
            path.unlink(missing_ok=True)  # no row, no file: nothing half-stored
        raise
    return Feedback.get_by_id(item.id)


def screenshot(access, feedback_id: int, *, settings) -> tuple[Feedback, bytes]:
    """The item's screenshot, checked against the SHA-256 recorded when it was stored."""
    item = get(access, feedback_id)
    if not item.screenshot_stored:
        raise NotFound()
    try:
        data = screenshot_path(settings.files_root(), item.screenshot_stored).read_bytes()
    except FileNotFoundError:
        raise NotFound("feedback.error.file_missing") from None
    if hashlib.sha256(data).hexdigest() != item.screenshot_sha256:
        raise NotFound("feedback.error.file_changed")
    return item, data


# -- the thread ------------------------------------------------------------------------------------

def thread(feedback_id: int) -> list[FeedbackEntry]:
    """The item's steps, oldest first, with their authors and assignees."""
    author, assignee = User.alias(), User.alias()
    return list(FeedbackEntry.select(FeedbackEntry, author, assignee)
                .join(author, JOIN.LEFT_OUTER, on=(FeedbackEntry.author == author.id).alias("author"))
                .switch(FeedbackEntry)
                .join(assignee, JOIN.LEFT_OUTER, on=(FeedbackEntry.assignee == assignee.id).alias("assignee"))
                .where(FeedbackEntry.feedback == feedback_id)
                .order_by(FeedbackEntry.created_at, FeedbackEntry.id))


def _locked(feedback_id: int) -> Feedback:
    """The item read again inside the transaction, its row locked on PostgreSQL (SQLite's
    transactions begin IMMEDIATE and so take turns already): two operators acting at once see
    each other's change instead of overwriting it."""
    query = Feedback.select().where(Feedback.id == feedback_id)
    if not is_sqlite():
        query = query.for_update()
    item = query.first()
    if item is None:
        raise NotFound()
    return item


def _notify(item: Feedback, entry: FeedbackEntry, actor) -> None:
    """A step by an operator is told to the reporter; the reporter's answer to the operator who
    handles the item, or, while nobody does, to every operator (system administrators)."""
    if item.reporter_id != actor.id:
        people = {item.reporter_id}
    elif item.assignee_id is not None:
        people = {item.assignee_id}
    else:
        people = {uid for (uid,) in User.select(User.id).where((User.is_admin == True)  # noqa: E712
                                                              & (User.is_active == True)).tuples()}  # noqa: E712
    for user_id in sorted(people - {actor.id}):
        FeedbackNotice.create(user=user_id, feedback=item.id, entry=entry.id, created_at=entry.created_at)


def reply(access, feedback_id: int, text: str, *, status: str = "") -> FeedbackEntry:
    """Add to the thread. The reporter replies while the item is open; an operator replies at
    any time and may set the status with the same step (or only set it, with no text)."""
    get(access, feedback_id)  # NotFound for whoever may not read it
    actor = access.actor
    operator = is_operator(access)
    text = _block(text)
    if not operator:
        status = ""
    elif status and status not in STATUSES:
        raise ValidationError({"status": "feedback.error.status"})
    if len(text) > MAX_REPLY:
        raise ValidationError({"text": "feedback.error.reply_long"}, limit=MAX_REPLY)
    with transaction():
        item = _locked(feedback_id)
        if status == item.status:
            status = ""
        if not text and not status:
            raise ValidationError({"text": "feedback.error.nothing" if operator else "feedback.error.reply_required"})
        if not operator and item.status not in OPEN:
            raise BaocaoError("feedback.error.closed")
        now = utcnow()
        entry = FeedbackEntry.create(feedback=item.id, author=actor.id, kind="reply" if text else "status",
                                     text=text, status=status, created_at=now)
        changes: dict = {"updated_at": now}
        if text:
            # The reporter's word waits for an answer; an operator's answers it.
            changes["awaiting_answer"] = actor.id == item.reporter_id and not operator
        if status:
            changes["status"] = status
            changes["closed_at"] = None if status in OPEN else now
            if status not in OPEN:
                changes["awaiting_answer"] = False  # closed: nothing more is owed
        Feedback.update(**changes).where(Feedback.id == item.id).execute()
        if text:
            audit.record("feedback.replied", actor=actor, unit=item.unit_id, object_type="feedback",
                         object_id=item.id, details={"size": len(text)})
        if status:
            audit.record("feedback.status_changed", actor=actor, unit=item.unit_id, object_type="feedback",
                         object_id=item.id, details={"from": item.status, "to": status})
        _notify(item, entry, actor)
    return entry


def administrators() -> list[User]:
    """Who may be given an item: the active system administrators (the only holders of ADMIN)."""
    return list(User.select().where((User.is_admin == True) & (User.is_active == True))  # noqa: E712
                .order_by(User.full_name, User.username))


def assign(access, feedback_id: int, assignee_id: int | None) -> Feedback:
    """Give the item to an active administrator, or to nobody (None)."""
    _require_operator(access)
    actor = access.actor
    assignee = None
    if assignee_id is not None:
        assignee = User.get_or_none((User.id == assignee_id) & (User.is_admin == True)  # noqa: E712
                                    & (User.is_active == True))  # noqa: E712
        if assignee is None:
            raise ValidationError({"assignee": "feedback.error.assignee"})
    with transaction():
        item = _locked(feedback_id)
        new_id = assignee.id if assignee is not None else None
        if item.assignee_id == new_id:
            return item
        previous = User.get_or_none(User.id == item.assignee_id) if item.assignee_id is not None else None
        now = utcnow()
        changes: dict = {"assignee": new_id, "updated_at": now}
        if assignee is not None and item.status == "new":
            changes["status"] = "in_progress"  # someone has it now
        Feedback.update(**changes).where(Feedback.id == item.id).execute()
        entry = FeedbackEntry.create(feedback=item.id, author=actor.id, kind="assign", assignee=new_id,
                                     status=changes.get("status", ""), created_at=now)
        audit.record("feedback.assigned", actor=actor, unit=item.unit_id, object_type="feedback", object_id=item.id,
                     details={"from": previous.username if previous else "",
                              "to": assignee.username if assignee else ""})
        if "status" in changes:
            audit.record("feedback.status_changed", actor=actor, unit=item.unit_id, object_type="feedback",
                         object_id=item.id, details={"from": item.status, "to": changes["status"]})
        if assignee is not None:
            _notify(item, entry, actor)
    return Feedback.get_by_id(item.id)


# -- lists -----------------------------------------------------------------------------------------

def _open_first():
    return Case(None, [(Feedback.status == "new", 0), (Feedback.status == "in_progress", 1)], 2)


def queue(access, *, status: str = "", kind: str = "", unit: int | None = None, assignee: str = "",
          limit: int = PAGE_SIZE) -> list[Feedback]:
    """The operator's queue: open items first (new, then in progress), the latest activity first.
    ``assignee``: "" anyone, "me" the operator asking, "none" nobody yet."""
    _require_operator(access)
    reporter, handler = User.alias(), User.alias()
    query = (Feedback.select(Feedback, Unit, reporter, handler)
             .join(Unit, on=(Feedback.unit == Unit.id))
             .switch(Feedback).join(reporter, on=(Feedback.reporter == reporter.id).alias("reporter"))
             .switch(Feedback)
             .join(handler, JOIN.LEFT_OUTER, on=(Feedback.assignee == handler.id).alias("assignee")))
    if status:
        query = query.where(Feedback.status == status)
    if kind:
        query = query.where(Feedback.kind == kind)
    if unit is not None:
        query = query.where(Feedback.unit == unit)
    if assignee == "me":
        query = query.where(Feedback.assignee == access.actor.id)
    elif assignee == "none":
        query = query.where(Feedback.assignee.is_null())
    return list(query.order_by(_open_first(), Feedback.updated_at.desc(), Feedback.id.desc()).limit(limit))


def status_counts() -> dict[str, int]:
    rows = Feedback.select(Feedback.status, fn.COUNT(Feedback.id)).group_by(Feedback.status).tuples()
    return {status: count for status, count in rows}


def queue_units() -> list[Unit]:
    """The units some item came from: what the queue's unit filter offers."""
    ids = Feedback.select(Feedback.unit).distinct()
    return sorted(Unit.select().where(Unit.id.in_(ids)), key=lambda u: (fold(u.name), u.name, u.id))


def mine(user_id: int, *, limit: int = PAGE_SIZE) -> list[dict]:
    """The person's own items, newest activity first, each with how many notices they have not read."""
    unread = dict(FeedbackNotice.select(FeedbackNotice.feedback, fn.COUNT(FeedbackNotice.id))
                  .where((FeedbackNotice.user == user_id) & FeedbackNotice.read_at.is_null())
                  .group_by(FeedbackNotice.feedback).tuples())
    items = list(Feedback.select().where(Feedback.reporter == user_id)
                 .order_by(Feedback.updated_at.desc(), Feedback.id.desc()).limit(limit))
    return [{"item": item, "unread": unread.get(item.id, 0)} for item in items]


def unread_count(user_id: int) -> int:
    return FeedbackNotice.select().where((FeedbackNotice.user == user_id) & FeedbackNotice.read_at.is_null()).count()


def _notices_query(p, unread_only: bool):
    author, assignee = User.alias(), User.alias()
    # Of the people, what a notice names them by (not their whole account: password hash and all).
    query = (FeedbackNotice.select(FeedbackNotice, Feedback, FeedbackEntry, author.id, author.username,
                                   author.full_name, assignee.id, assignee.username, assignee.full_name,
                                   fn.COUNT(FeedbackNotice.id).over().alias("total"))
             .join(Feedback, on=(FeedbackNotice.feedback == Feedback.id))
             .switch(FeedbackNotice).join(FeedbackEntry, on=(FeedbackNotice.entry == FeedbackEntry.id))
             .join(author, JOIN.LEFT_OUTER, on=(FeedbackEntry.author == author.id).alias("author"))
             .switch(FeedbackEntry)
             .join(assignee, JOIN.LEFT_OUTER, on=(FeedbackEntry.assignee == assignee.id).alias("assignee"))
             .where(FeedbackNotice.user == p.user))
    if unread_only:
        query = query.where(FeedbackNotice.read_at.is_null())
    return query.order_by(FeedbackNotice.created_at.desc(), FeedbackNotice.id.desc()).limit(p.limit)


# Built and compiled once (the home page asks at every visit): unread only, and all.
_NOTICES = {unread_only: Prepared(lambda p, unread_only=unread_only: _notices_query(p, unread_only))
            for unread_only in (True, False)}


def notices(user_id: int, *, unread_only: bool = True, limit: int = 20) -> list[dict]:
    """The person's notices, newest first, as facts a screen words: the item, the step, who took it
    (of an author or assignee: the id, username and full name)."""
    return _notices(user_id, unread_only, limit)[0]


def _notices(user_id: int, unread_only: bool, limit: int) -> tuple[list[dict], int]:
    """``notices``, and how many there are in all (a window count: no query of its own)."""
    rows = list(_NOTICES[bool(unread_only)].run(user=user_id, limit=limit))
    return ([{"id": n.id, "feedback": n.feedback, "entry": n.entry, "at": n.created_at, "read": n.read_at is not None}
             for n in rows], rows[0].total if rows else 0)


def notice_text(entry: FeedbackEntry, item: Feedback, lang: str) -> str:
    """One line telling the reporter what happened, in ``lang`` (worded when shown, as the workflow's
    notifications are)."""
    catalog = core_catalog()
    author = entry.author.full_name if entry.author_id is not None else catalog.gettext(lang, "feedback.operator")
    status = catalog.gettext(lang, STATUS_LABELS[entry.status]) if entry.status in STATUS_LABELS else ""
    params = {"actor": author, "title": item.title, "status": status}
    if entry.kind == "assign":
        assignee = entry.assignee.full_name if entry.assignee_id is not None else ""
        return catalog.gettext(lang, "feedback.notice.assign", assignee=assignee, **params)
    if entry.kind == "reply":
        return catalog.gettext(lang, "feedback.notice.reply_status" if status else "feedback.notice.reply", **params)
    return catalog.gettext(lang, "feedback.notice.status", **params)


@dataclass
class HomePart:
    """What the home work list shows of feedback: the person's unread news (the newest few, worded),
    and to an operator how many items wait for someone to take them."""

    news: list
    unread: int
    waiting: int | None  # None: not an operator

    @property
    def applies(self) -> bool:
        return bool(self.unread or self.waiting)


_WAITING = Prepared(lambda p: Feedback.select(fn.COUNT(Feedback.id))
                    .where((Feedback.status == "new") & Feedback.assignee.is_null()).tuples())


def home_part(access, lang: str, *, shown: int = 5) -> HomePart:
    found, unread = _notices(access.actor.id, True, shown)  # the unread count with them (unread_count)
    news = [{"feedback_id": n["feedback"].id, "at": n["at"], "text": notice_text(n["entry"], n["feedback"], lang)}
            for n in found]
    waiting = None
    if is_operator(access):
        waiting, = _WAITING.first()
    return HomePart(news, unread, waiting)


def mark_read(user_id: int, feedback_id: int) -> int:
    """The person has seen the item: its notices to them are read."""
    with transaction():
        return (FeedbackNotice.update(read_at=utcnow())
                .where((FeedbackNotice.user == user_id) & (FeedbackNotice.feedback == feedback_id)
                       & FeedbackNotice.read_at.is_null()).execute())


# -- for the usage report ----------------------------------------------------------------------------

def _utc_start_of(day: dt.date) -> dt.datetime:
    """Midnight of the instance's ``day``, as stored (naive UTC)."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=clock.zone())
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


def counts_by_unit_month(start: dt.date, end: dt.date) -> dict[tuple[int, dt.date], MonthCounts]:
    """Items filed from ``start`` to ``end`` (both days included, days and months of the instance's
    time zone), by the unit the person belonged to when filing and the month: {(unit id, first day
    of the month): MonthCounts}. Units and months without an item are absent."""
    if end < start:
        return {}
    rows = (Feedback.select(Feedback.unit, Feedback.kind, Feedback.created_at)
            .where((Feedback.created_at >= _utc_start_of(start))
                   & (Feedback.created_at < _utc_start_of(end + dt.timedelta(days=1))))
            .tuples())
    counted: dict[tuple[int, dt.date], list[int]] = {}
    for unit_id, kind, created_at in rows:
        local = clock.local(created_at)
        pair = counted.setdefault((unit_id, dt.date(local.year, local.month, 1)), [0, 0])
        pair[0 if kind == "problem" else 1] += 1
    return {key: MonthCounts(problems, proposals) for key, (problems, proposals) in counted.items()}
