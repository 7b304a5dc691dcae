"""Backups of an instance: one encrypted archive with the database, the stored files and a
manifest; checking one; restoring one into an empty place and proving it complete; the worker's
daily backup and its retention (docs/backup.md; security.md BAK-01..04, CRY-03).

An archive (``baocao-<UTC time>.bcbak``) is the encrypted container of core.backup_crypto around
an uncompressed tar of three parts: ``manifest.json`` first, then the database dump
(core.backup_db) and ``files.tar`` (the folder ``files_root()``: attachments, screenshots…).
The manifest records each part's size and SHA-256, each stored file's, the row count of every
table, the audit chain's head and the migrations applied: a restore counts as done only when all
of these are found again in the restored copy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from core import __version__, backup_db, clock
from core.backup_crypto import DecryptingReader, EncryptingWriter, read_key
from core.errors import BaocaoError
from core.i18n import current_catalog

log = logging.getLogger("baocao.backup")

FORMAT = 1
MANIFEST = "manifest.json"
FILES_PART = "files.tar"
SUFFIX = ".bcbak"
NAME_RE = re.compile(r"^baocao-(\d{8}T\d{6}Z)\.bcbak\Z")
NAME_TIME = "%Y%m%dT%H%M%SZ"
BACKUP_HOUR = 2  # the daily backup's hour in the instance's time zone: nobody reports at 02:00
READ_SIZE = 1 << 20


@dataclass(frozen=True)
class Archive:
    path: Path
    size: int
    sha256: str
    manifest: dict


def archive_name(at: dt.datetime) -> str:
    return f"baocao-{at.strftime(NAME_TIME)}{SUFFIX}"


def archive_time(name: str) -> dt.datetime | None:
    """The UTC time in an archive's name, or None for any other name (not ours: never touched)."""
    match = NAME_RE.match(name)
    if not match:
        return None
    try:
        return dt.datetime.strptime(match.group(1), NAME_TIME).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def _key(settings, key_file: str | None = None) -> bytes:
    path = key_file or settings.backup_key_file
    if not path:  # never an unencrypted backup instead
        raise BaocaoError("backup.error.no_key")
    return read_key(path)


def sha256_file(path: Path) -> tuple[str, int]:
    """(SHA-256 in hex, size in bytes) of a file, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(READ_SIZE), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class _Hashing:
    """A file-like reader or writer that hashes what passes through it."""

    def __init__(self, inner):
        self.inner, self.digest, self.size = inner, hashlib.sha256(), 0

    def read(self, n=-1):
        data = self.inner.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data

    def write(self, data):
        self.digest.update(data)
        self.size += len(data)
        return self.inner.write(data)


# -- making an archive ----------------------------------------------------------------------------

def _tar_files(root: Path, target: Path, skip: Path | None) -> list[dict]:
    """The stored files as a tar (regular files only, by their path under ``root``); returns
    each file's path, size and SHA-256 for the manifest."""
    listed = []
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        if not root.is_dir():
            return listed
        for folder, dirs, names in os.walk(root):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if skip is None or (here / d).resolve() != skip)
            for name in sorted(names):
                path = here / name
                relative = path.relative_to(root).as_posix()
                try:
                    fh = open(path, "rb")  # open first: a file deleted meanwhile is simply not there
                except FileNotFoundError:
                    continue
                with fh:
                    stat = os.fstat(fh.fileno())
                    if not path.is_file() or path.is_symlink():
                        continue
                    info = tarfile.TarInfo(relative)
                    info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o600
                    hashing = _Hashing(fh)
                    tar.addfile(info, hashing)
                listed.append({"path": relative, "size": stat.st_size, "sha256": hashing.digest.hexdigest()})
    return listed


def create_backup(settings, to_dir: str | os.PathLike | None = None, *, now: dt.datetime | None = None) -> Archive:
    """Write one encrypted archive of the instance into ``to_dir`` (default ``backup_dir``),
    atomically, and record it in the audit trail. Refused, with nothing written, without a key."""
    key = _key(settings)
    target = to_dir or settings.backup_dir
    if not target:
        raise BaocaoError("backup.error.no_dir")
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = (now or clock.now_utc()).astimezone(dt.timezone.utc)
    final = folder / archive_name(created)
    if final.exists():
        raise BaocaoError("backup.error.exists", path=str(final))
    # The plaintext parts wait in a private temporary folder (TMPDIR), never beside the archives.
    with tempfile.TemporaryDirectory(prefix="baocao-backup-") as work:
        work = Path(work)
        kind, dump_path, facts = backup_db.dump(settings.database_url, work)
        files = _tar_files(settings.files_root(), work / FILES_PART, skip=folder.resolve())
        parts = [{"name": path.name, "size": path.stat().st_size, "sha256": sha256_file(path)[0]}
                 for path in (dump_path, work / FILES_PART)]
        manifest = {"format": FORMAT, "baocao_version": __version__,
                    "created": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    "database": kind, "parts": parts, **facts.as_dict(), "files": files}
        temp = final.with_name(final.name + ".part")
        try:
            with open(temp, "xb") as raw:
                os.chmod(temp, 0o600)
                hashing = _Hashing(raw)
                sealed = EncryptingWriter(hashing, key)
                with tarfile.open(fileobj=sealed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    body = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
                    info = tarfile.TarInfo(MANIFEST)
                    info.size, info.mtime, info.mode = len(body), int(created.timestamp()), 0o600
                    tar.addfile(info, io.BytesIO(body))
                    for part in parts:
                        path = work / part["name"]
                        info = tarfile.TarInfo(part["name"])
                        info.size, info.mtime, info.mode = part["size"], int(created.timestamp()), 0o600
                        with open(path, "rb") as fh:
                            tar.addfile(info, fh)
                sealed.close()
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    _fsync_dir(folder)
    archive = Archive(final, hashing.size, hashing.digest.hexdigest(), manifest)
    if backup_db.AUDIT_TABLE in facts.tables:
        _audit(settings.database_url, "backup.created",
               {"file": final.name, "size": archive.size, "sha256": archive.sha256}, reuse_current=True)
    log.info("backup written: %s (%d bytes)", final, archive.size)
    return archive


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _database(url: str, *, reuse_current: bool = False):
    """The application's database proxy pointed at ``url`` for a while, then back as it was.
    ``reuse_current``: when the proxy is set already (the worker, whose other threads use it
    meanwhile: never repoint it under them), ``url`` is its database; use it as it is."""
    from core.db import db, make_database

    if reuse_current and db.obj is not None:
        with db.connection_context():
            yield
        return
    previous, database = db.obj, make_database(url)
    db.initialize(database)
    try:
        with db.connection_context():
            yield
    finally:
        database.close()
        if hasattr(database, "close_all"):
            database.close_all()
        db.initialize(previous)


def _audit(url: str, action: str, details: dict, *, reuse_current: bool = False) -> None:
    from core import audit
    from core.db import transaction

    with _database(url, reuse_current=reuse_current), transaction():
        audit.record(action, object_type="backup", object_id=details["file"][:64], details=details)


# -- reading an archive ---------------------------------------------------------------------------

def read_archive(path: str | os.PathLike, key: bytes, extract_to: Path | None = None) -> dict:
    """Decrypt the archive, check every part against the manifest, and (with ``extract_to``)
    leave the parts there. Returns the manifest; raises ``BaocaoError`` naming what is wrong."""
    return _read(path, key, extract_to)[0]


def _read(path, key: bytes, extract_to: Path | None) -> tuple[dict, str]:
    """``read_archive``, and the archive file's own SHA-256 taken on the way."""
    try:
        source = open(path, "rb")
    except OSError as exc:
        raise BaocaoError("backup.error.unreadable", path=str(path), reason=exc.strerror or str(exc)) from None
    with source:
        whole = _Hashing(source)
        reader = DecryptingReader(whole, key)
        manifest, seen = None, set()
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    stream = tar.extractfile(member)
                    if stream is None:
                        raise BaocaoError("backup.error.damaged", where=member.name)
                    if manifest is None:
                        if member.name != MANIFEST:
                            raise BaocaoError("backup.error.damaged", where=member.name)
                        manifest = json.loads(stream.read().decode("utf-8"))
                        if manifest.get("format") != FORMAT:
                            raise BaocaoError("backup.error.version", version=manifest.get("format"))
                        expected = {part["name"]: part for part in manifest["parts"]}
                        continue
                    part = expected.get(member.name)
                    if part is None or member.name in seen:
                        raise BaocaoError("backup.error.damaged", where=member.name)
                    seen.add(member.name)
                    hashing = _Hashing(stream)
                    with open(extract_to / member.name, "xb") if extract_to else contextlib.nullcontext() as out:
                        for block in iter(lambda: hashing.read(READ_SIZE), b""):
                            if out is not None:
                                out.write(block)
                    if hashing.size != part["size"] or hashing.digest.hexdigest() != part["sha256"]:
                        raise BaocaoError("backup.error.part_hash", part=member.name)
        except tarfile.TarError as exc:
            raise BaocaoError("backup.error.damaged", where=str(exc)[:80]) from None
        reader.drain()  # an archive cut or extended after the tar's end fails here
    if manifest is None:
        raise BaocaoError("backup.error.damaged", where=MANIFEST)
    missing = sorted(set(expected) - seen)
    if missing:
        raise BaocaoError("backup.error.part_missing", part=", ".join(missing))
    return manifest, whole.digest.hexdigest()


def verify_archive(settings, path, key_file: str | None = None) -> dict:
    return read_archive(path, _key(settings, key_file))


# -- restoring ------------------------------------------------------------------------------------

class CheckFailed(BaocaoError):
    """The restored copy differs from its manifest: what differs, in each language, inside the
    warning not to use the copy."""

    def __init__(self, reason: BaocaoError):
        super().__init__("backup.error.restore_check")
        self.reason = reason

    def message(self, lang: str = "vi") -> str:
        return current_catalog().gettext(lang, self.key, reason=self.reason.message(lang))


@dataclass(frozen=True)
class Restored:
    manifest: dict
    database: str
    files_dir: Path
    rows: int
    events: int


def _refuse_unless_empty(files_dir: Path, url: str | None = None) -> None:
    from core.db import _safe

    if files_dir.exists() and (not files_dir.is_dir() or any(files_dir.iterdir())):
        raise BaocaoError("backup.error.files_not_empty", path=str(files_dir))
    if url and not backup_db.is_empty(url):
        raise BaocaoError("backup.error.database_not_empty", database=_safe(url))


def _check(url: str, files_dir: Path, manifest: dict) -> None:
    """The restored copy against the manifest: rows of every table, migrations, the audit chain
    (intact, and ending where the manifest says) and every stored file."""
    from core import audit

    facts = backup_db.facts_of(url)
    for table in sorted(set(manifest["tables"]) | set(facts.tables)):
        want, got = manifest["tables"].get(table), facts.tables.get(table)
        if want != got:
            raise BaocaoError("backup.error.rows", table=table, expected=want, found=got)
    if facts.migrations != manifest["migrations"]:
        raise BaocaoError("backup.error.migrations")
    if facts.audit != manifest["audit"]:
        raise BaocaoError("backup.error.audit_head", expected=manifest["audit"]["last_id"],
                          found=facts.audit["last_id"])
    if backup_db.AUDIT_TABLE in facts.tables:
        with _database(url):
            result = audit.verify()
        if not result.ok:
            raise BaocaoError("backup.error.audit_broken", id=result.broken_id)
    for entry in manifest["files"]:
        path = files_dir / entry["path"]
        if not path.is_file() or sha256_file(path)[0] != entry["sha256"]:
            raise BaocaoError("backup.error.file_hash", path=entry["path"])


def restore_archive(settings, path, *, database_url: str | None = None, files_dir: str | None = None,
                    key_file: str | None = None) -> Restored:
    """Restore an archive into an empty database and an empty (or missing) files folder, then
    prove it complete (``_check``) and only then record it in the restored audit trail."""
    key = _key(settings, key_file)
    url = database_url or settings.database_url
    files = Path(files_dir) if files_dir else replace(settings, database_url=url).files_root()
    _refuse_unless_empty(files)
    with tempfile.TemporaryDirectory(prefix="baocao-restore-") as work:
        work = Path(work)
        manifest, archive_sha256 = _read(path, key, work)
        kind = manifest["database"]
        target_kind = backup_db.parse_database_url(url).backend
        if kind != target_kind:
            raise BaocaoError("backup.error.kind_mismatch", archive=kind, target=target_kind)
        _refuse_unless_empty(files, url)  # the folder again: reading a large archive takes a while
        backup_db.restore(kind, work / backup_db.DUMP_NAMES[kind], url)
        files.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tarfile.open(work / FILES_PART, "r") as tar:
            tar.extractall(files, filter="data")  # refuses absolute paths, "..", links out
    try:
        _check(url, files, manifest)
    except BaocaoError as exc:
        raise CheckFailed(exc) from None
    if backup_db.AUDIT_TABLE in manifest["tables"]:
        _audit(url, "backup.restored", {"file": Path(path).name, "sha256": archive_sha256, "at": manifest["created"]})
    return Restored(manifest, kind, files, sum(manifest["tables"].values()), manifest["audit"]["count"])


# -- the daily job and its retention --------------------------------------------------------------

def to_delete(names, *, daily: int, weekly: int, monthly: int, zone: dt.tzinfo = dt.timezone.utc) -> list[str]:
    """The archives retention removes from ``names`` (anything not named like an archive is
    kept): the newest archive of each of the last ``daily`` days that have one, of each of the
    last ``weekly`` ISO weeks and of each of the last ``monthly`` months stay, and the newest
    archive always stays. Days, weeks and months are the instance's (``zone``)."""
    dated = sorted(((when, name) for name in names if (when := archive_time(name))), reverse=True)
    keep = {dated[0][1]} if dated else set()
    for count, bucket in ((daily, lambda d: d.date()),
                          (weekly, lambda d: d.date().isocalendar()[:2]),
                          (monthly, lambda d: (d.year, d.month))):
        seen = []
        for when, name in dated:  # newest first: the first of a bucket is its newest
            label = bucket(when.astimezone(zone))
            if label not in seen:
                if len(seen) == count:
                    break
                seen.append(label)
                keep.add(name)
    return sorted(name for _, name in dated if name not in keep)


def prune(settings, folder: Path) -> list[str]:
    names = [entry.name for entry in folder.iterdir() if entry.is_file()]
    removed = to_delete(names, daily=settings.backup_keep_daily, weekly=settings.backup_keep_weekly,
                        monthly=settings.backup_keep_monthly, zone=clock.zone())
    for name in removed:
        (folder / name).unlink(missing_ok=True)
        log.info("backup removed by retention: %s", name)
    return removed


def due(folder: Path, now: dt.datetime) -> bool:
    """From ``BACKUP_HOUR`` of the instance's day, while that day has no archive yet (a worker
    that was stopped at 02:00 makes the day's backup when it runs again)."""
    local = clock.local(now)
    if local.hour < BACKUP_HOUR:
        return False
    names = [entry.name for entry in folder.iterdir()] if folder.is_dir() else []
    return not any(clock.local(when).date() == local.date() for name in names if (when := archive_time(name)))


def run_daily(settings) -> Archive | None:
    """The worker's job: back up when due, then apply retention; nothing without a folder and key."""
    if not (settings.backup_dir and settings.backup_key_file):
        return None
    import fcntl

    folder = Path(settings.backup_dir)
    if not due(folder, clock.now_utc()):
        return None
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Two workers on one machine: the second finds the lock taken, or the day's archive made once
    # it has it (an flock is released by the kernel if its holder dies: never a stale lock).
    with open(folder / ".baocao-backup.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        if not due(folder, clock.now_utc()):
            return None
        archive = create_backup(settings)
        prune(settings, folder)
    return archive

