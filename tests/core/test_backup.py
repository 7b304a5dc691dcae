"""Backups (issue 17; security.md BAK-01..04, CRY-03): the restore drill on the test's database
(SQLite or PostgreSQL), an archive that is unreadable without its key and fails when altered or
cut, a restore that never writes over data, retention, and the worker's daily job."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from core import audit, backup, backup_db
from core.backup_crypto import DecryptingReader, EncryptingWriter, read_key, write_new_key
from core.db import parse_database_url
from core.errors import BaocaoError
from core.reporting import data as rd
from tests.fixtures.forms import form_world

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def world(db_session, settings):
    """Users, an issued regime with a saved report, an attachment: each with its audit events."""
    w = form_world()
    rd.save(w.p["reporter"], w.report.id, {("banle", "cur"): (rd.MISSING, "110")})
    rd.add_attachment(w.p["reporter"], w.report.id, "Báo cáo tháng.pdf", PDF, settings=settings)
    return w


@pytest.fixture
def configured(settings, tmp_path):
    key = write_new_key(tmp_path / "backup.key")
    return replace(settings, backup_dir=str(tmp_path / "backups"), backup_key_file=str(key))


@pytest.fixture(scope="session")
def _restore_databases():
    """PostgreSQL databases made to restore into, dropped once at the end: a DROP DATABASE waits
    for a checkpoint (seconds on a slow disk), emptying the schema between tests does not."""
    made: dict[str, str] = {}  # name -> the server's maintenance URL
    yield made
    import psycopg

    for name, admin in made.items():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_target(settings, tmp_path, _restore_databases):
    """The URL of an empty database (no table at all) of the test's kind."""
    spec = parse_database_url(settings.database_url)
    if spec.backend == "sqlite":
        return f"sqlite:///{tmp_path / 'restored.db'}"
    import psycopg

    server = settings.database_url.rsplit("/", 1)[0]
    name = f"{spec.database}_restored"[:60]
    if name not in _restore_databases:
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        _restore_databases[name] = server + "/postgres"
    else:
        with psycopg.connect(f"{server}/{name}", autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    return f"{server}/{name}"


def table_hashes(url: str, *, audit_up_to: int | None = None) -> dict:
    """Every table's content: its rows (all columns) sorted, hashed."""
    spec = parse_database_url(url)
    out = {}
    with backup_db.connect(spec) as conn:
        for table in backup_db.read_facts(conn, spec.backend).tables:
            where = f" WHERE id <= {int(audit_up_to)}" if table == backup_db.AUDIT_TABLE and audit_up_to else ""
            rows = sorted(repr(tuple(row)) for row in conn.execute(f'SELECT * FROM "{table}"{where}').fetchall())
            out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


def tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def details_of(url: str, action: str) -> list[str]:
    """The details of the audit events of ``action``, oldest first."""
    with backup_db.connect(parse_database_url(url)) as conn:
        rows = conn.execute("SELECT action, details FROM core_audit_event ORDER BY id").fetchall()
    return [details for name, details in rows if name == action]


@contextlib.contextmanager
def people_writing():
    """Audit events appended from another thread all along the block (BAK-01: a backup taken
    while people work); yields the list of the ids written."""
    from core.db import db

    stop, written = threading.Event(), []

    def writer():
        with db.connection_context():
            while not stop.is_set():
                written.append(audit.record("user.unlock", details={"count": len(written)}).id)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 3 and thread.is_alive():  # writing before the backup starts
            stop.wait(0.01)
        yield written
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def run_cli(monkeypatch, configured):
    """``baocao …`` in this process with the test's settings given as the environment."""
    from core import cli

    for name, value in {"BAOCAO_DATABASE_URL": configured.database_url, "BAOCAO_SECRET_KEY": configured.secret_key,
                        "BAOCAO_MODE": "test", "BAOCAO_FILES_DIR": configured.files_dir,
                        "BAOCAO_BACKUP_DIR": configured.backup_dir,
                        "BAOCAO_BACKUP_KEY_FILE": configured.backup_key_file}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BAOCAO_SETTINGS", raising=False)
    return lambda *args: cli.main(list(args))


def test_the_drill_restores_every_row_file_and_the_audit_chain(world, configured, empty_target, tmp_path,
                                                              run_cli, capsys):
    files_before = tree(configured.files_root())
    assert any(name.startswith("attachments/") for name in files_before)

    with people_writing() as written:  # the backup is taken while people work (BAK-01)
        assert run_cli("backup") == 0
    out = capsys.readouterr().out
    archive = next(Path(configured.backup_dir).glob("baocao-*.bcbak"))
    assert archive.name in out and stat.S_IMODE(archive.stat().st_mode) == 0o600
    [created] = details_of(configured.database_url, "backup.created")  # recorded where it was made
    archive_sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert archive.name in created and archive_sha256 in created

    assert run_cli("backup", "verify", str(archive)) == 0
    assert "Bản sao lưu nguyên vẹn" in capsys.readouterr().out

    restored_files = tmp_path / "restored-files"
    assert run_cli("restore", str(archive), "--database-url", empty_target, "--files-dir", str(restored_files)) == 0
    assert "Đã khôi phục và kiểm tra" in capsys.readouterr().out
    # Every table as it was at one moment: the audit trail up to the manifest's head, which some of
    # the events written during the backup reach, and nothing after it.
    manifest = backup.read_archive(archive, read_key(configured.backup_key_file))
    head = manifest["audit"]["last_id"]
    assert written[0] <= head
    assert table_hashes(empty_target, audit_up_to=head) == table_hashes(configured.database_url, audit_up_to=head)
    assert tree(restored_files) == files_before
    [restored] = details_of(empty_target, "backup.restored")  # audited in the restored database
    assert archive.name in restored and archive_sha256 in restored
    assert details_of(empty_target, "backup.created") == []

    # What ``baocao audit verify`` runs, on the restored database (the command itself would close
    # this test's connection): the chain is whole, the restore's own event included.
    with backup._database(empty_target):
        result = audit.verify()
    assert result.ok and result.checked == manifest["audit"]["count"] + 1


def test_the_archive_is_unreadable_without_its_key_and_any_change_fails(world, configured, run_cli, tmp_path,
                                                                        capsys):
    made = backup.create_backup(configured)
    raw = made.path.read_bytes()
    # Neither the manifest, nor the names of people, nor the attachment can be read in it.
    for clear in (b"manifest.json", b"reporter", PDF[:12], b"core_audit_event"):
        assert clear not in raw

    def verify(data: bytes) -> tuple[int, str]:
        target = tmp_path / "copy.bcbak"
        target.write_bytes(data)
        code = run_cli("backup", "verify", str(target))
        return code, capsys.readouterr().err

    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x01
    code, err = verify(bytes(flipped))
    assert code == 1 and "bị hỏng, bị cắt cụt hoặc đã bị sửa" in err and "damaged" in err and err.count("\n") == 1
    assert verify(raw[:-100])[0] == 1
    assert verify(raw[:len(raw) // 2])[0] == 1
    assert verify(raw + raw[-40:])[0] == 1  # extended
    assert verify(raw)[0] == 0

    other = write_new_key(tmp_path / "other.key")
    code = run_cli("backup", "verify", str(made.path), "--key-file", str(other))
    err = capsys.readouterr().err
    assert code == 1 and "một khóa khác" in err and "another key" in err


def test_a_cut_at_a_chunk_boundary_a_dropped_or_swapped_chunk_is_detected():
    key = os.urandom(32)
    out = io.BytesIO()
    writer = EncryptingWriter(out, key, chunk_size=16)
    writer.write(bytes(range(64)))  # four chunks of 16 bytes
    writer.close()
    sealed, head, size = out.getvalue(), 29, 16 + 16
    assert DecryptingReader(io.BytesIO(sealed), key).read() == bytes(range(64))
    chunks = [sealed[head + i * size:head + (i + 1) * size] for i in range(4)]
    for altered in (sealed[:head + 3 * size],  # the last chunk gone: the one before was sealed "not last"
                    sealed[:head] + chunks[0] + chunks[2] + chunks[1] + chunks[3],
                    sealed[:head] + chunks[0] + chunks[2] + chunks[3]):
        with pytest.raises(BaocaoError) as exc:
            DecryptingReader(io.BytesIO(altered), key).read()
        assert exc.value.key == "backup.error.damaged"
    with pytest.raises(BaocaoError) as exc:
        DecryptingReader(io.BytesIO(b"PK\x03\x04" + sealed[4:]), key)
    assert exc.value.key == "backup.error.not_archive"


def test_restore_refuses_a_database_or_folder_with_content_and_leaves_them_untouched(world, configured, tmp_path):
    made = backup.create_backup(configured)
    before = table_hashes(configured.database_url)
    with pytest.raises(BaocaoError) as exc:
        backup.restore_archive(configured, made.path, files_dir=str(tmp_path / "new-files"))
    assert exc.value.key == "backup.error.database_not_empty" and "đã có bảng" in str(exc.value)
    assert table_hashes(configured.database_url) == before and not (tmp_path / "new-files").exists()

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(BaocaoError) as exc:
        backup.restore_archive(configured, made.path, database_url=f"sqlite:///{tmp_path / 'x.db'}",
                               files_dir=str(busy))
    assert exc.value.key == "backup.error.files_not_empty" and [p.name for p in busy.iterdir()] == ["keep.txt"]

    # An archive of one kind of database never goes into the other kind.
    kind = parse_database_url(configured.database_url).backend
    other = f"sqlite:///{tmp_path / 'y.db'}" if kind == "postgresql" else "postgresql://nobody@127.0.0.1:1/none"
    with pytest.raises(BaocaoError) as exc:
        backup.restore_archive(configured, made.path, database_url=other, files_dir=str(tmp_path / "z"))
    assert exc.value.key == "backup.error.kind_mismatch" and "not supported" in str(exc.value)


def test_without_a_key_nothing_is_backed_up_and_a_key_is_never_overwritten(world, configured, tmp_path):
    folder = tmp_path / "backups"
    with pytest.raises(BaocaoError) as exc:
        backup.create_backup(replace(configured, backup_key_file=""))
    assert exc.value.key == "backup.error.no_key" and "unencrypted" in str(exc.value)
    assert not folder.exists()
    assert backup.run_daily(replace(configured, backup_key_file="")) is None and not folder.exists()

    key_file = Path(configured.backup_key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(read_key(key_file)) == 32
    original = key_file.read_bytes()
    with pytest.raises(BaocaoError) as exc:
        write_new_key(key_file)
    assert exc.value.key == "backup.error.key_exists" and key_file.read_bytes() == original
    (tmp_path / "short.key").write_text("abcd")
    with pytest.raises(BaocaoError) as exc:
        backup.create_backup(replace(configured, backup_key_file=str(tmp_path / "short.key")))
    assert exc.value.key == "backup.error.key_format" and not folder.exists()


def names(*stamps: str) -> list[str]:
    return [f"baocao-{s}.bcbak" for s in stamps]


def test_retention_keeps_the_newest_of_each_day_week_and_month():
    daily = [f"202612{d:02d}T190000Z" for d in range(1, 11)]  # 1–10 December, one a day
    extra = ["20261210T080000Z"]  # a second one on the 10th, by hand
    older = ["20261115T190000Z", "20261101T190000Z", "20261020T190000Z", "20260901T190000Z"]
    everything = names(*daily, *extra, *older) + ["notes.txt", "baocao-20261209T190000Z.bcbak.part"]
    gone = backup.to_delete(everything, daily=3, weekly=2, monthly=3)
    kept = set(everything) - set(gone)
    assert "notes.txt" in kept and "baocao-20261209T190000Z.bcbak.part" in kept  # never its own names
    assert set(names("20261210T190000Z", "20261209T190000Z", "20261208T190000Z")) <= kept  # 3 days
    assert "baocao-20261210T080000Z.bcbak" in gone  # not the newest of its day
    assert "baocao-20261206T190000Z.bcbak" in kept  # Sunday: the newest of the week before
    assert "baocao-20261115T190000Z.bcbak" in kept and "baocao-20261101T190000Z.bcbak" in gone  # November's newest
    assert "baocao-20261020T190000Z.bcbak" in kept and "baocao-20260901T190000Z.bcbak" in gone  # 3 months
    assert len(kept) == 2 + 3 + 1 + 1 + 1  # foreign names, three days, a week, November, October
    # Days are the instance's: 19:00 UTC on the 9th is 02:00 on the 10th in Vietnam.
    hanoi = dt.timezone(dt.timedelta(hours=7))
    gone = backup.to_delete(names("20261209T190000Z", "20261210T080000Z"), daily=1, weekly=1, monthly=1, zone=hanoi)
    assert gone == ["baocao-20261209T190000Z.bcbak"]
    # Whatever the numbers, the newest stays and an empty folder is fine.
    assert backup.to_delete(names("20261201T000000Z", "20261101T000000Z"), daily=1, weekly=1, monthly=1) == \
        ["baocao-20261101T000000Z.bcbak"]
    assert backup.to_delete([], daily=1, weekly=1, monthly=1) == []


def test_the_worker_backs_up_once_a_day_from_two_in_the_morning_and_applies_retention(world, configured,
                                                                                     frozen_clock):
    from core.jobs import make_huey

    folder = Path(configured.backup_dir)
    folder.mkdir()
    for name in names(*(f"202612{d:02d}T190000Z" for d in range(1, 6))) + ["notes.txt"]:
        (folder / name).write_bytes(b"")
    settings = replace(configured, backup_keep_daily=2, backup_keep_weekly=1, backup_keep_monthly=1)
    huey = make_huey(settings, immediate=True)
    night = dt.datetime(2026, 12, 6, 18, 50)  # 01:50 on 7 December in Vietnam
    task = next(t for t in huey.read_periodic(night) if t.name == "core.backup")
    frozen_clock(night)
    assert huey.execute(task) is None and len(list(folder.iterdir())) == 6
    frozen_clock(night + dt.timedelta(hours=1))  # 02:50
    made = huey.execute(task)
    assert made == "baocao-20261206T195000Z.bcbak"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["notes.txt", ".baocao-backup.lock", made, "baocao-20261205T190000Z.bcbak"])  # the 6th (local), the 5th
    frozen_clock(night + dt.timedelta(hours=5))
    assert huey.execute(task) is None  # once a day
    assert backup.run_daily(replace(settings, backup_dir="")) is None


def test_the_database_password_never_reaches_the_command_line(monkeypatch):
    monkeypatch.setattr(backup_db.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    spec = parse_database_url("postgresql://baocao:s3cr%40t@db.example:6543/baocao?sslmode=require")
    args, env = backup_db._pg_command("pg_dump", spec)
    assert env["PGPASSWORD"] == "s3cr@t" and not any("s3cr" in a for a in args)
    assert args[1:3] == ["--dbname", "dbname='baocao' sslmode='require'"]
    assert ["--host", "db.example", "--port", "6543", "--username", "baocao"] == args[4:]
    monkeypatch.setattr(backup_db.shutil, "which", lambda tool: None)
    with pytest.raises(BaocaoError) as exc:
        backup_db._pg_command("pg_restore", spec)
    assert exc.value.key == "backup.error.tool_missing" and "pg_restore" in str(exc.value)
