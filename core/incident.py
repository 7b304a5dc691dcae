"""The incident evidence export (security.md VN-02; Decree 331/2026 Art. 31: a serious incident is
notified within 24 hours and reported within 72).

One ZIP for a time window (at most ``MAX_DAYS`` days), optionally narrowed to a unit's subtree or
one username: the audit events with their chain hashes, the login attempts, the sessions started
or active, the people and the reports those rows name, a manifest (filters, who exported and when,
counts, each file's SHA-256, the audit chain's head and whether it verified) and a README in
Vietnamese and English. ``baocao incident export`` and the audit screen's button both call
``export``; the export is itself audited (``incident.exported``, with the filters and the SHA-256 of
the manifest), and the file is handed out only once that record is written.

CSV files are UTF-8 with a byte-order mark (Excel then reads Vietnamese text) and every text cell
goes through ``core.export_safety``. Rows are streamed from the database into the archive.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field

from core import audit, clock, export_safety
from core.accounts.login import LoginAttempt, normalise_username
from core.db import transaction
from core.errors import BaocaoError
from core.models import Session, Unit, User, utcnow
from core.units.tree import subtree_ids

MAX_DAYS = 31
FORMAT = "baocao.incident/1"
ACTION = "incident.exported"
BOM = "\ufeff"
FILES = ("audit.csv", "logins.csv", "sessions.csv", "affected_users.csv", "affected_reports.csv")

README = """BẰNG CHỨNG SỰ CỐ — baocao
==========================

Gói này do baocao xuất để hỗ trợ xử lý sự cố an toàn thông tin (Nghị định 331/2026/NĐ-CP, Điều 31).
Thời gian trong tệp CSV: cột *_utc là giờ UTC, cột *_local là giờ của hệ thống (xem manifest.json).

- audit.csv: các sự kiện nhật ký hệ thống trong khoảng thời gian đã chọn, đủ mọi cột, kèm mã băm
  của chuỗi (prev_hash, hash) để kiểm tra không bị sửa, xóa.
- logins.csv: các lần đăng nhập (địa chỉ, thời điểm, thành công hay không, tên đăng nhập đã gõ).
- sessions.csv: các phiên làm việc bắt đầu hoặc còn hoạt động trong khoảng thời gian (người dùng,
  đơn vị, địa chỉ, trình duyệt, thời điểm). Phiên đã đăng xuất không còn ở đây: xem auth.logout trong audit.csv.
- affected_users.csv: những người dùng (và tên đăng nhập không có tài khoản) xuất hiện trong các tệp trên.
- affected_reports.csv: các báo cáo xuất hiện trong các sự kiện nhật ký.
- manifest.json: bộ lọc, người xuất, thời điểm xuất, số dòng, SHA-256 của từng tệp, đầu chuỗi nhật ký
  và kết quả kiểm tra chuỗi nhật ký lúc xuất.

Nghĩa vụ: sự cố nghiêm trọng phải thông báo ban đầu trong 24 giờ và báo cáo trong 72 giờ kể từ khi
phát hiện, cho cơ quan chuyên trách theo quy định. Giữ nguyên gói này; đối chiếu SHA-256 trong
manifest.json và trong sự kiện incident.exported của nhật ký.

INCIDENT EVIDENCE — baocao
==========================

baocao exported this package to support handling an information security incident (Decree
331/2026/ND-CP, Article 31). Times in the CSV files: *_utc columns are UTC, *_local columns are in the
system's time zone (see manifest.json).

- audit.csv: the audit events of the chosen window, every column, with the chain hashes (prev_hash,
  hash) that show no event was altered or removed.
- logins.csv: login attempts (address, time, success, the username typed).
- sessions.csv: sessions started or active in the window (person, unit, address, browser, times).
  Sessions already logged out are not here: see auth.logout in audit.csv.
- affected_users.csv: the people (and usernames without an account) that appear in the files above.
- affected_reports.csv: the reports that appear in the audit events.
- manifest.json: filters, who exported, when, row counts, each file's SHA-256, the audit chain's head
  and whether the chain verified at export time.

Duties: a serious incident is notified within 24 hours and reported within 72 hours of its discovery,
to the competent authority. Keep this package unchanged; compare the SHA-256 values with manifest.json
and with the incident.exported event in the audit trail.
"""


@dataclass(frozen=True)
class Window:
    """What an export covers: [start, end) in naive UTC, a unit's subtree, a username."""

    start: dt.datetime
    end: dt.datetime
    unit: Unit | None = None
    username: str = ""

    def filters(self) -> dict:
        return {"from_utc": _iso(self.start), "to_utc": _iso(self.end),
                "from_local": clock.local(self.start).isoformat(), "to_local": clock.local(self.end).isoformat(),
                "unit": self.unit.code if self.unit else "", "user": self.username}


def parse_moment(text: str, name: str) -> dt.datetime:
    """An ISO 8601 time as stored (naive UTC); one without an offset is the instance's local time
    (what a person types, and what <input type="datetime-local"> sends)."""
    value = (text or "").strip()
    if not value:
        raise BaocaoError("incident.error.required", field=name)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise BaocaoError("incident.error.time", value=value[:40]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.zone())
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def window(start: str, end: str, *, unit_code: str = "", username: str = "") -> Window:
    """The window the filters name, checked: both times, end after start, at most MAX_DAYS days, a
    unit that exists. A username is kept as typed (normalised): a probed name may have no account."""
    begin, finish = parse_moment(start, "from"), parse_moment(end, "to")
    if finish <= begin:
        raise BaocaoError("incident.error.order")
    if finish - begin > dt.timedelta(days=MAX_DAYS):
        raise BaocaoError("incident.error.too_long", days=MAX_DAYS)
    unit = None
    code = (unit_code or "").strip()
    if code:
        unit = Unit.get_or_none(Unit.code == code)
        if unit is None:
            raise BaocaoError("incident.error.unit", code=code[:40])
    return Window(begin, finish, unit, normalise_username(username or "")[:64])


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") + "Z" if value else ""


def _local(value: dt.datetime | None) -> str:
    return clock.local(value).replace(tzinfo=None).isoformat(timespec="seconds") if value else ""


class _Csv:
    """One CSV file of the archive, written row by row and hashed on the way."""

    def __init__(self, archive: zipfile.ZipFile, name: str, header: list[str]):
        self.name, self.rows = name, 0
        self._entry = archive.open(name, "w")
        self._digest = hashlib.sha256()
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        self._put(BOM)
        self._writer.writerow(header)
        self._flush()

    def _put(self, text: str) -> None:
        data = text.encode("utf-8")
        self._digest.update(data)
        self._entry.write(data)

    def _flush(self) -> None:
        self._put(self._buffer.getvalue())
        self._buffer.seek(0)
        self._buffer.truncate()

    def row(self, values) -> None:
        self._writer.writerow(export_safety.csv_row(["" if v is None else v for v in values]))
        self.rows += 1
        if self.rows % 500 == 0:
            self._flush()

    def close(self) -> str:
        self._flush()
        self._entry.close()
        return self._digest.hexdigest()


@dataclass
class Result:
    counts: dict = field(default_factory=dict)
    hashes: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    event: audit.AuditEvent | None = None


def _audit_query(win: Window, unit_ids: list[int] | None, user: User | None):
    event = audit.AuditEvent
    query = event.select().where((event.at >= win.start) & (event.at < win.end))
    if unit_ids is not None:
        query = query.where(event.unit_id.in_(unit_ids))
    if win.username:
        who = event.actor_name == win.username
        if user is not None:
            who |= (event.actor_id == user.id) | ((event.object_type == "user") & (event.object_id == str(user.id)))
        query = query.where(who)
    return query.order_by(event.id)


def write_archive(target, win: Window, exported_by: dict) -> Result:
    """Write the evidence ZIP of ``win`` into ``target`` (a path or a binary file object)."""
    result = Result()
    unit_ids = subtree_ids(win.unit.id) if win.unit else None
    user = User.get_or_none(User.username == win.username) if win.username else None
    user_ids: dict[int, set] = {}  # user id -> the files naming them
    unknown_names: set[str] = set()  # usernames typed at login with no account
    report_ids: dict[int, int] = {}  # report id -> events naming it

    def done(out: _Csv) -> None:  # a ZIP takes one file at a time
        result.hashes[out.name] = out.close()
        result.counts[out.name] = out.rows

    def named(uid, where):
        if uid is not None:
            user_ids.setdefault(int(uid), set()).add(where)

    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        columns = ["id", "at_utc", "at_local", "actor_id", "actor_name", "unit_id", "action", "object_type",
                   "object_id", "result", "request_id", "client_address", "details", "prev_hash", "hash"]
        out = _Csv(archive, "audit.csv", columns)
        for e in _audit_query(win, unit_ids, user).iterator():
            out.row([e.id, _iso(e.at), _local(e.at), e.actor_id, e.actor_name, e.unit_id, e.action, e.object_type,
                     e.object_id, e.result, e.request_id, e.client_address, e.details, e.prev_hash, e.hash])
            named(e.actor_id, "audit")
            if e.object_type == "user" and e.object_id.isdigit():
                named(e.object_id, "audit")
            if e.object_type == "report" and e.object_id.isdigit():
                report_ids[int(e.object_id)] = report_ids.get(int(e.object_id), 0) + 1
        done(out)

        attempts = (LoginAttempt.select()
                    .where((LoginAttempt.attempted_at >= win.start) & (LoginAttempt.attempted_at < win.end)))
        if win.username:
            attempts = attempts.where(LoginAttempt.username == win.username)
        if unit_ids is not None:
            attempts = attempts.where(LoginAttempt.username.in_(
                User.select(User.username).where(User.unit.in_(unit_ids))))
        out = _Csv(archive, "logins.csv", ["id", "attempted_at_utc", "attempted_at_local", "address", "username",
                                           "success"])
        accounts = {}
        for a in attempts.order_by(LoginAttempt.id).iterator():
            out.row([a.id, _iso(a.attempted_at), _local(a.attempted_at), a.address, a.username,
                     "yes" if a.success else "no"])
            accounts.setdefault(a.username, None)
        done(out)
        if accounts:
            found = dict(User.select(User.username, User.id).where(User.username.in_(list(accounts))).tuples())
            for name in accounts:
                if name in found:
                    named(found[name], "logins")
                else:
                    unknown_names.add(name)

        sessions = (Session.select(Session, User, Unit).join(User).join(Unit)
                    .where((Session.created_at < win.end) & (Session.last_seen_at >= win.start)))
        if unit_ids is not None:
            sessions = sessions.where(User.unit.in_(unit_ids))
        if win.username:
            sessions = sessions.where(User.username == win.username)
        out = _Csv(archive, "sessions.csv", ["id", "user_id", "username", "full_name", "unit_code", "unit_name",
                                             "client_address", "user_agent", "created_at_utc", "created_at_local",
                                             "last_seen_at_utc", "last_seen_at_local", "mfa_pending",
                                             "reauth_at_utc"])
        for s in sessions.order_by(Session.id).iterator():  # never the token's hash
            out.row([s.id, s.user.id, s.user.username, s.user.full_name, s.user.unit.code, s.user.unit.name,
                     s.client_address, s.user_agent, _iso(s.created_at), _local(s.created_at),
                     _iso(s.last_seen_at), _local(s.last_seen_at), "yes" if s.mfa_pending else "no",
                     _iso(s.reauth_at)])
            named(s.user.id, "sessions")
        done(out)

        out = _Csv(archive, "affected_users.csv", ["user_id", "username", "full_name", "unit_code", "unit_name",
                                                   "is_admin", "is_active", "last_login_at_utc", "failed_logins",
                                                   "locked_until_utc", "appears_in"])
        for start in range(0, len(user_ids), 500):
            chunk = sorted(user_ids)[start:start + 500]
            for u in User.select(User, Unit).join(Unit).where(User.id.in_(chunk)).order_by(User.id):
                out.row([u.id, u.username, u.full_name, u.unit.code, u.unit.name, "yes" if u.is_admin else "no",
                         "yes" if u.is_active else "no", _iso(u.last_login_at), u.failed_logins,
                         _iso(u.locked_until), " ".join(sorted(user_ids[u.id]))])
        for name in sorted(unknown_names):
            out.row(["", name, "", "", "", "", "", "", "", "", "logins (no account)"])
        done(out)

        from core.regimes.regimes import Regime
        from core.reporting.opening import Report

        out = _Csv(archive, "affected_reports.csv", ["report_id", "regime_code", "unit_code", "unit_name", "period",
                                                     "status", "revision", "submitted_at_utc", "events_in_window"])
        ids = sorted(report_ids)
        for start in range(0, len(ids), 500):
            query = (Report.select(Report, Regime, Unit).join(Regime).switch(Report).join(Unit)
                     .where(Report.id.in_(ids[start:start + 500])).order_by(Report.id))
            for r in query:
                out.row([r.id, r.regime.code, r.unit.code, r.unit.name, r.label, r.status, r.revision,
                         _iso(r.submitted_at), report_ids[r.id]])
        done(out)

        readme = README.encode("utf-8")
        archive.writestr("README.txt", readme)
        result.hashes["README.txt"] = hashlib.sha256(readme).hexdigest()

        checked = audit.verify()
        head = audit.AuditEvent.select(audit.AuditEvent.id, audit.AuditEvent.hash).order_by(
            audit.AuditEvent.id.desc()).first()
        now = utcnow()
        result.manifest = {
            "format": FORMAT, "filters": win.filters(), "exported_by": exported_by,
            "exported_at_utc": _iso(now), "exported_at_local": clock.local(now).isoformat(timespec="seconds"),
            "time_zone": str(clock.zone()), "max_days": MAX_DAYS, "counts": result.counts,
            "sha256": result.hashes,
            "audit_chain": {"head_id": head.id if head else None, "head_hash": head.hash if head else audit.GENESIS,
                            "verified": checked.ok, "checked": checked.checked, "broken_id": checked.broken_id,
                            "broken_reason": checked.reason},
        }
        archive.writestr("manifest.json", json.dumps(result.manifest, ensure_ascii=False, indent=1, sort_keys=True))
    return result


def export(target, win: Window, *, actor=None, exported_by: dict | None = None) -> Result:
    """Write the archive and record ``incident.exported`` (filters, counts, the manifest's SHA-256)
    in one transaction: a failure to record fails the export, so no file is handed out unrecorded.
    ``actor``: the administrator on the screen; None for the command."""
    who = dict(exported_by or {})
    if actor is not None:
        who.update({"username": actor.username, "full_name": actor.full_name, "user_id": actor.id})
    with transaction():
        result = write_archive(target, win, who)
        manifest = json.dumps(result.manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        result.event = audit.record(ACTION, actor=actor, object_type="incident",
                                    details={"filters": win.filters(), "counts": result.counts,
                                             "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
                                             "via": who.get("via", "")})
    return result
