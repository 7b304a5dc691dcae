"""Feedback and incidents (issue 14 item 8, Điều 9.1c, 9.4): filing a problem or a proposal with a
screenshot checked by its magic bytes, who may read an item, the operator's assignments, replies
and status changes (audited, the reporter notified), and the counts the usage report reads.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
from pathlib import Path

import pytest

from core import feedback as fb
from core.accounts import login as accounts
from core.accounts.permissions import core_access
from core.audit import AuditEvent
from core.db import db
from core.errors import BaocaoError, Forbidden, NotFound, ValidationError
from core.feedback import Feedback, FeedbackEntry, FeedbackNotice
from core.models import Unit, User

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture
def world(db_session):
    province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
    commune = Unit.create(code="44.GIOLINH", name="Xã Gio Linh", kind="commune", parent=province)
    other = Unit.create(code="44.CAMLO", name="Xã Cam Lộ", kind="commune", parent=province)

    def person(username, unit, **kw):
        return accounts.create_user(username, f"Người {username}", accounts.random_password(), unit, **kw)

    return type("World", (), {
        "province": province, "commune": commune, "other": other,
        "reporter": person("canbo_xa", commune), "neighbour": person("canbo_camlo", other),
        "operator": person("quantri", province, is_admin=True),
        "second": person("quantri2", province, is_admin=True)})


def access(user):
    return core_access(User.get_by_id(user.id))


def file_one(world, settings, **changes):
    fields = {"kind": "problem", "title": "Không nộp được báo cáo", "description": "Bấm Nộp thì báo lỗi.",
              "page": "/reports/12", "screenshot": ("man-hinh.png", PNG), **changes}
    return fb.submit(access(world.reporter), settings=settings, **fields)


def test_a_problem_is_filed_with_its_screenshot_stored_by_a_generated_name(world, settings):
    item = file_one(world, settings)
    assert (item.kind, item.status, item.page, item.unit_id) == ("problem", "new", "/reports/12", world.commune.id)
    assert item.screenshot_name == "man-hinh.png" and item.screenshot_type == "image/png"
    assert item.screenshot_sha256 == hashlib.sha256(PNG).hexdigest() and item.screenshot_size == len(PNG)
    stored = settings.files_root() / "feedback" / item.screenshot_stored[:2] / item.screenshot_stored
    assert stored.read_bytes() == PNG and "man-hinh" not in str(stored)
    _, data = fb.screenshot(access(world.reporter), item.id, settings=settings)
    assert data == PNG
    event = AuditEvent.get(AuditEvent.action == "feedback.created")
    assert (event.object_type, event.object_id, event.unit_id) == ("feedback", str(item.id), world.commune.id)
    # A JPEG, and no screenshot at all, are fine too.
    assert file_one(world, settings, screenshot=("anh.JPG", JPEG)).screenshot_type == "image/jpeg"
    assert file_one(world, settings, screenshot=None).screenshot_stored is None


@pytest.mark.parametrize("name, data, error", [
    ("man-hinh.png", b"<html>not a picture</html>", "feedback.error.file_content"),  # a .png that is no PNG
    ("man-hinh.png", JPEG, "feedback.error.file_content"),  # a JPEG named .png
    ("man-hinh.gif", b"GIF89a" + b"\x00" * 20, "feedback.error.file_type"),
    ("man-hinh.png", b"", "feedback.error.file_empty"),
])
def test_a_bad_screenshot_is_refused_and_nothing_is_stored(world, settings, name, data, error):
    with pytest.raises(ValidationError) as refused:
        file_one(world, settings, screenshot=(name, data))
    assert refused.value.errors == {"screenshot": error}
    assert Feedback.select().count() == 0
    assert AuditEvent.select().where(AuditEvent.action.startswith("feedback.")).count() == 0
    assert not (settings.files_root() / "feedback").exists()


def test_a_screenshot_over_the_attachment_limit_is_refused(world, make_settings):
    small = make_settings(attachment_max_mb=1)
    too_big = PNG + b"\x00" * (1024 * 1024)
    with pytest.raises(ValidationError) as refused:
        file_one(world, small, screenshot=("lon.png", too_big))
    assert refused.value.errors == {"screenshot": "feedback.error.file_too_big"} and refused.value.params["mb"] == 1
    # The cap never passes what an ordinary form may carry, whatever the attachment setting.
    assert fb.screenshot_limit_mb(make_settings(attachment_max_mb=50)) == fb.SCREENSHOT_MAX_MB


def test_every_field_at_fault_is_named_at_once(world, settings):
    with pytest.raises(ValidationError) as refused:
        file_one(world, settings, kind="other", title="  \n ", description="", page="https://evil.example/x",
                 screenshot=("a.txt", b"x"))
    assert refused.value.errors == {"kind": "feedback.error.kind", "title": "feedback.error.title_required",
                                    "description": "feedback.error.description_required",
                                    "page": "feedback.error.page", "screenshot": "feedback.error.file_type"}
    with pytest.raises(ValidationError) as long:
        file_one(world, settings, title="x" * (fb.MAX_TITLE + 1), description="y" * (fb.MAX_DESCRIPTION + 1))
    assert long.value.errors == {"title": "feedback.error.title_long", "description": "feedback.error.description_long"}


def test_text_is_stored_without_control_characters(world, settings):
    item = file_one(world, settings, title="Lỗi\x00 khi\nnộp", description="Dòng 1\r\nDòng 2\x00")
    assert item.title == "Lỗi khi nộp" and item.description == "Dòng 1\nDòng 2"


@pytest.mark.parametrize("value, clean", [
    ("", ""), ("  ", ""), ("/reports/12", "/reports/12"), ("/reports/12?tab=a&b=2", "/reports/12?tab=a&b=2"),
    ("//evil.example/x", None), ("https://evil.example/", None), ("javascript:alert(1)", None),
    ("/\\evil.example", None), ("/a b", None), ("/a\x00", None), ("/" + "a" * fb.MAX_PAGE, None),
])
def test_only_a_path_of_this_site_is_kept_as_the_page(value, clean):
    assert fb.clean_page(value) == clean


def test_only_the_reporter_and_the_operator_may_read_an_item(world, settings):
    item = file_one(world, settings)
    assert fb.get(access(world.reporter), item.id).id == item.id
    assert fb.get(access(world.operator), item.id).id == item.id
    for reader, item_id in ((world.neighbour, item.id), (world.reporter, item.id + 1000)):
        with pytest.raises(NotFound):
            fb.get(access(reader), item_id)
    with pytest.raises(NotFound):
        fb.screenshot(access(world.neighbour), item.id, settings=settings)
    with pytest.raises(NotFound):
        fb.reply(access(world.neighbour), item.id, "Tôi cũng bị")
    with pytest.raises(Forbidden):
        fb.queue(access(world.reporter))
    with pytest.raises(Forbidden):
        fb.assign(access(world.reporter), item.id, world.operator.id)


def test_the_operator_assigns_answers_and_closes_and_the_reporter_is_told_each_time(world, settings):
    item = file_one(world, settings)
    operator = access(world.operator)
    assert [f.id for f in fb.queue(operator)] == [item.id]

    fb.assign(operator, item.id, world.second.id)
    item = Feedback.get_by_id(item.id)
    assert (item.assignee_id, item.status) == (world.second.id, "in_progress")  # someone has it now
    fb.reply(operator, item.id, "Đã ghi nhận, đang kiểm tra.")
    fb.reply(access(world.reporter), item.id, "Vẫn còn lỗi sáng nay.")
    assert Feedback.get_by_id(item.id).awaiting_answer is True
    fb.reply(operator, item.id, "Đã sửa, mời anh thử lại.", status="done")
    item = Feedback.get_by_id(item.id)
    assert (item.status, item.awaiting_answer, item.closed_at is not None) == ("done", False, True)

    entries = fb.thread(item.id)
    assert [(e.kind, e.status, e.author_id) for e in entries] == [
        ("assign", "in_progress", world.operator.id), ("reply", "", world.operator.id),
        ("reply", "", world.reporter.id), ("reply", "done", world.operator.id)]
    # Three notices for the reporter (the assignment, two answers), none for their own reply.
    assert fb.unread_count(world.reporter.id) == 3 and fb.unread_count(world.operator.id) == 0
    texts = [fb.notice_text(n["entry"], n["feedback"], "vi") for n in fb.notices(world.reporter.id)]
    assert texts[0] == "Người quantri đã trả lời phản ánh “Không nộp được báo cáo” và chuyển sang “Đã xong”."
    assert texts[-1] == "Phản ánh “Không nộp được báo cáo” đã được giao cho Người quantri2 xử lý."
    assert fb.notice_text(fb.notices(world.reporter.id)[1]["entry"], item, "en") == \
        "Người quantri replied to your report “Không nộp được báo cáo”."
    assert fb.mark_read(world.reporter.id, item.id) == 3 and fb.unread_count(world.reporter.id) == 0
    assert fb.mine(world.reporter.id)[0]["unread"] == 0

    actions = [(e.action, e.details) for e in AuditEvent.select().where(AuditEvent.action.startswith("feedback."))
               .order_by(AuditEvent.id)]
    assert [a for a, _ in actions] == ["feedback.created", "feedback.assigned", "feedback.status_changed",
                                       "feedback.replied", "feedback.replied", "feedback.replied",
                                       "feedback.status_changed"]
    assert '"to": "quantri2"' in actions[1][1] and '"from": "in_progress", "to": "done"' in actions[-1][1]

    # Closed: the reporter can no longer add to it; the operator can reopen it with a status alone.
    with pytest.raises(BaocaoError) as closed:
        fb.reply(access(world.reporter), item.id, "Thêm một ý")
    assert closed.value.key == "feedback.error.closed"
    entry = fb.reply(operator, item.id, "", status="in_progress")
    assert entry.kind == "status" and Feedback.get_by_id(item.id).closed_at is None


def test_a_reply_must_say_something(world, settings):
    item = file_one(world, settings)
    with pytest.raises(ValidationError) as empty:
        fb.reply(access(world.reporter), item.id, "  ")
    assert empty.value.errors == {"text": "feedback.error.reply_required"}
    with pytest.raises(ValidationError) as nothing:
        fb.reply(access(world.operator), item.id, "", status="new")  # the status it already has
    assert nothing.value.errors == {"text": "feedback.error.nothing"}
    with pytest.raises(ValidationError):
        fb.reply(access(world.operator), item.id, "x", status="archived")
    # A reporter cannot set a status: the field is not theirs.
    fb.reply(access(world.reporter), item.id, "Bổ sung", status="done")
    assert Feedback.get_by_id(item.id).status == "new"
    assert FeedbackEntry.select().count() == 1
    # Not news to the reporter; nobody has taken the item, so every active operator hears of it.
    assert {n.user_id for n in FeedbackNotice.select()} == {world.operator.id, world.second.id}


def test_only_an_active_administrator_can_be_assigned(world, settings):
    item = file_one(world, settings)
    operator = access(world.operator)
    for someone in (world.reporter.id, 999_999):
        with pytest.raises(ValidationError):
            fb.assign(operator, item.id, someone)
    User.update(is_active=False).where(User.id == world.second.id).execute()
    with pytest.raises(ValidationError):
        fb.assign(operator, item.id, world.second.id)
    fb.assign(operator, item.id, world.operator.id)
    fb.assign(operator, item.id, None)
    assert Feedback.get_by_id(item.id).assignee_id is None
    assert [e.assignee_id for e in fb.thread(item.id)] == [world.operator.id, None]
    # The operator assigning to themself is not news to tell themself; the reporter hears once.
    assert FeedbackNotice.select().count() == 1


def test_the_queue_filters_by_status_kind_unit_and_assignee(world, settings):
    first = file_one(world, settings)
    proposal = fb.submit(access(world.neighbour), kind="proposal", title="Thêm nút in", description="Để in nhanh.",
                         settings=settings)
    operator = access(world.operator)
    fb.assign(operator, first.id, world.operator.id)
    ids = lambda **f: [i.id for i in fb.queue(operator, **f)]  # noqa: E731
    assert ids() == [proposal.id, first.id]  # new before in progress
    assert ids(status="in_progress") == [first.id] and ids(kind="proposal") == [proposal.id]
    assert ids(unit=world.other.id) == [proposal.id] and ids(assignee="me") == [first.id]
    assert ids(assignee="none") == [proposal.id]
    assert fb.status_counts() == {"new": 1, "in_progress": 1}
    assert [u.name for u in fb.queue_units()] == ["Xã Cam Lộ", "Xã Gio Linh"]


def test_counts_by_unit_and_month_in_the_instances_time_zone(world, settings, frozen_clock):
    # 31/3 at 17:30 UTC is already 1/4 in Việt Nam: counted in April.
    for at, who, kind in ((dt.datetime(2026, 3, 2, 3), world.reporter, "problem"),
                          (dt.datetime(2026, 3, 31, 17, 30), world.reporter, "proposal"),
                          (dt.datetime(2026, 4, 10, 3), world.reporter, "problem"),
                          (dt.datetime(2026, 4, 11, 3), world.neighbour, "problem"),
                          (dt.datetime(2026, 5, 1, 3), world.neighbour, "problem")):
        frozen_clock(at)
        fb.submit(access(who), kind=kind, title="T", description="D", settings=settings)
    counts = fb.counts_by_unit_month(dt.date(2026, 3, 1), dt.date(2026, 4, 30))
    assert counts == {(world.commune.id, dt.date(2026, 3, 1)): fb.MonthCounts(problems=1, proposals=0),
                      (world.commune.id, dt.date(2026, 4, 1)): fb.MonthCounts(problems=1, proposals=1),
                      (world.other.id, dt.date(2026, 4, 1)): fb.MonthCounts(problems=1, proposals=0)}
    assert counts[(world.commune.id, dt.date(2026, 4, 1))].total == 2
    # The unit is the one the person belonged to when filing: a later move changes nothing.
    User.update(unit=world.other.id).where(User.id == world.reporter.id).execute()
    assert fb.counts_by_unit_month(dt.date(2026, 3, 1), dt.date(2026, 4, 30)) == counts
    assert fb.counts_by_unit_month(dt.date(2026, 4, 2), dt.date(2026, 4, 1)) == {}


def test_the_migration_goes_down_and_up_again(db_session):
    spec = importlib.util.spec_from_file_location(
        "feedback_migration", Path(fb.__file__).with_name("migrations") / "0027_feedback.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    from playhouse.migrations import SchemaMigrator

    tables = {"core_feedback", "core_feedback_entry", "core_feedback_notice"}
    migrator = SchemaMigrator.from_database(db.obj)
    with db.atomic():
        migration.down(migrator, db.obj)
    assert not tables & set(db.obj.get_tables())
    with db.atomic():
        migration.up(migrator, db.obj)
    assert tables <= set(db.obj.get_tables())
    for model in (Feedback, FeedbackEntry, FeedbackNotice):
        assert {c.name for c in db.obj.get_columns(model._meta.table_name)} == \
            {f.column_name for f in model._meta.sorted_fields}
