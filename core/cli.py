"""The ``baocao`` command: init, serve, demo, migrate, plugins, plugin new, worker, audit verify, integrity
verify, backup, restore, incident export, periods, and the plugins' own commands under their names (``baocao <plugin>
<command>``, hook register_commands).

The server commands hand uvicorn the *name* of the web application
(``web.asgi:...``), so the domain layer never imports the web layer.
Operator mistakes (a bad setting, a malformed database URL, a broken plugin)
end in one line naming the culprit; tracebacks go to the log only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import secrets
import sys
from pathlib import Path

from core import __version__
from core import clock
from core.errors import BaocaoError
from core.i18n import core_catalog

log = logging.getLogger("baocao.cli")


def _t(key: str, **params) -> str:
    catalog = core_catalog()
    vi, en = catalog.gettext("vi", key, **params), catalog.gettext("en", key, **params)
    return vi if vi == en else f"{vi} / {en}"


class OneLineFormatter(logging.Formatter):
    """For the terminal: the message only; the traceback belongs in the log file."""

    def format(self, record):
        record = logging.makeLogRecord(record.__dict__)
        # Cut the formatted message, not the format string: cutting "%s\n%s" leaves more
        # arguments than placeholders, and logging then prints its own traceback.
        record.msg, record.args = record.getMessage().split("\n", 1)[0], None
        record.exc_info = record.exc_text = record.stack_info = None
        return super().format(record)


def configure_logging(settings=None, verbose: bool = False, server: bool = False) -> None:
    """One-shot commands show one line per problem; a server's standard error is its log
    (text or JSON lines: setting ``log_format``, core.logs)."""
    import logging.config

    from core.logs import logging_config

    logging.config.dictConfig(logging_config(settings, verbose=verbose, server=server))


def _settings(args, server: bool = False):
    from core.settings import load_settings

    if getattr(args, "settings", None):
        os.environ["BAOCAO_SETTINGS"] = str(Path(args.settings).resolve())
    settings = load_settings()
    configure_logging(settings, args.verbose, server=server)
    clock.configure(settings.time_zone)  # the commands' "today" is the instance's day
    return settings


# Plugin failures of this command, written to the table the plugins page reads when it ends
# (core.plugin_failures): this process's plugin manager is not the web server's.
_RECORDERS: list = []


def _prepare(settings, *, strict=False, process="command", without_backup=False):
    """Database, plugins and schema: what every command that touches data needs (a pending
    migration is preceded by a backup: core.migrate.backup_before)."""
    from core.accounts import passwords
    from core.db import init_db
    from core.migrate import migrate_all
    from core.plugins import build_plugin_manager
    from core.registry import build_registry

    settings.check_for_production()
    passwords.self_test()
    init_db(settings.database_url)
    pm = build_plugin_manager(settings, strict=strict)
    from core import plugin_failures

    _RECORDERS.append(plugin_failures.attach(pm, process))
    registry = build_registry(pm, settings)
    applied = migrate_all(registry, pm, settings, without_backup=without_backup)
    # Report transitions a command makes (opening periods, say) reach the plugins switched on.
    from core.reporting import events

    events.use(pm, registry, settings)
    return pm, registry, applied


def cmd_migrate(args) -> int:
    settings = _settings(args)
    pm, _, applied = _prepare(settings, without_backup=args.without_backup)
    for name, steps in applied.items():
        print(_t("cli.migrate.applied", name=name, count=len(steps), steps=", ".join(steps) or "-"))
    failed = [i for i in pm.infos.values() if i.status == "failed"]
    for info in failed:
        print(_t("cli.plugin_failed", name=info.name, stage=info.stage, summary=info.summary), file=sys.stderr)
    return 1 if failed else 0


def cmd_init(args) -> int:
    from core.accounts import login as accounts
    from core.db import db
    from core.models import Unit, User

    settings = _settings(args)
    _prepare(settings)
    with db.connection_context():
        if User.select().exists():
            print(_t("cli.init.already"))
            return 0
        unit = Unit.get_or_none(Unit.code == args.unit_code) or Unit.create(
            code=args.unit_code, name=args.unit_name, kind=args.unit_kind)
        password = accounts.random_password()
        accounts.create_user(args.admin, args.admin_name, password, unit, is_admin=True,
                             must_change_password=True)
    print(_t("cli.init.done", unit=unit.name))
    print(_t("cli.init.admin", username=args.admin, password=password))
    return 0


def _serve(app: str, host: str, port: int, workers: int, factory: bool = False, settings=None,
           verbose: bool = False) -> None:
    import uvicorn

    from core.logs import logging_config
    from core.metrics import prepare_multiprocess

    # Request metrics of every worker are summed at a scrape (core.metrics): each worker writes its
    # own files in a fresh directory named before the workers start, so they inherit it.
    prepare_multiprocess(workers)
    # log_config: every worker (a new interpreter) logs as this command does; access_log off: one
    # line per request, ours (baocao.access: user, unit, route template), not uvicorn's as well.
    uvicorn.run(app, host=host, port=port, workers=workers, factory=factory, proxy_headers=False,
                server_header=False, log_level="info", access_log=False,
                log_config=logging_config(settings, verbose=verbose, server=True))


def cmd_serve(args) -> int:
    settings = _settings(args, server=True)
    _prepare(settings)  # fail here, in one line, rather than inside a worker process
    _serve("web.asgi:create", args.host, args.port, args.workers, factory=True, settings=settings,
           verbose=args.verbose)
    return 0


def cmd_demo(args) -> int:
    from core.demo import SECURITY_CONTACT, issue_demo_regimes, seed_demo
    from core.db import db

    if args.database.startswith(("postgres://", "postgresql://")):
        # A PostgreSQL database (the browser tests run the demo on both backends): it must be
        # empty, since the demo never writes over anybody's data.
        from core.db import make_database

        database = make_database(args.database)
        try:
            taken = database.get_tables()
        finally:
            database.close()
        path = args.database.rsplit("@", 1)[-1]  # no password on screen
        if taken:
            print(_t("cli.demo.not_empty", database=path), file=sys.stderr)
            return 2
        os.environ["BAOCAO_DATABASE_URL"] = args.database
        certs = Path("baocao-demo.demo-certs").resolve()
    else:
        path = Path(args.database).resolve()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        os.environ["BAOCAO_DATABASE_URL"] = f"sqlite:///{path}"
        certs = Path(str(path) + ".demo-certs")  # each account's .p12 file, beside the database
    os.environ.setdefault("BAOCAO_SECRET_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("BAOCAO_MODE", "development")
    os.environ.setdefault("BAOCAO_SESSION_IDLE_MINUTES", "120")
    # The demo administrators log in with a password only; a real installation asks them for 2FA.
    os.environ.setdefault("BAOCAO_REQUIRE_ADMIN_MFA", "false")
    os.environ.setdefault("BAOCAO_SECURITY_CONTACT", SECURITY_CONTACT)  # /.well-known/security.txt shows one
    # Built quietly (the migration steps go to the log file only, if one is set), so the block
    # printed at the end — where to go and how to log in — is what the person reads.
    settings = _settings(args, server=False)
    pm, _, _ = _prepare(settings)
    with db.connection_context():
        demo = seed_demo(settings, certs)
        # Plugins add the demo data they own (hook seed_demo); a failure there skips only it.
        list(pm.call_each("seed_demo", stage="contribution", settings=settings, today=clock.today(),
                          demo_ca=demo.ca))
        issue_demo_regimes(pm, settings, clock.today())
    # A comparison, not a bind (the server binds to args.host, the operator's choice): bandit B104's false alarm.
    url = f"http://{args.host if args.host != '0.0.0.0' else '127.0.0.1'}:{args.port}/"  # nosec B104
    settings_file = _write_demo_settings(settings, path if isinstance(path, Path) else None)
    _print_demo(settings, demo, url=url, path=str(path), certs=certs, settings_file=settings_file,
                serving=not args.no_serve)
    if args.no_serve:
        return 0
    configure_logging(settings, args.verbose, server=True)  # from here on, standard error is the server's log
    _serve("web.asgi:create", args.host, args.port, 1, factory=True, settings=settings, verbose=args.verbose)
    return 0


def _write_demo_settings(settings, database: Path | None) -> Path:
    """The demo's settings (its random secret key included: the unit's seal is encrypted under it),
    so the database built with ``--no-serve`` can be served later by ``baocao --settings … serve``.
    Readable by its owner only."""
    target = Path(str(database) + ".toml") if database else Path("baocao-demo.toml").resolve()
    lines = ["# Written by `baocao demo`, rebuilt with its database on each run.",
             *(f"{name} = {json.dumps(getattr(settings, name), ensure_ascii=False)}"
               for name in ("mode", "database_url", "secret_key")),
             f"session_idle_minutes = {settings.session_idle_minutes}",
             f"require_admin_mfa = {'true' if settings.require_admin_mfa else 'false'}",
             f"security_contact = {json.dumps(list(settings.security_contact), ensure_ascii=False)}"]
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return target


def _print_demo(settings, demo, *, url: str, path: str, certs: Path, settings_file: Path, serving: bool) -> None:
    """The block a newcomer reads: where to go, who to log in as, and what to expect."""

    def say(key: str, **params) -> None:  # Vietnamese first, then English, one line each
        catalog = core_catalog()
        vi, en = catalog.gettext("vi", key, **params), catalog.gettext("en", key, **params)
        print(vi if vi == en else f"{vi}\n{en}")

    rule = "=" * 78
    print(rule)
    if serving:
        say("cli.demo.ready", url=url)
    else:
        say("cli.demo.built", path=path)
        say("cli.demo.serve_later", command=f"baocao --settings {settings_file} serve", url=url)
    say("cli.demo.logins")
    for login in demo.logins:
        print(f"  {login.username:<15} {login.password}  {login.full_name} — {login.unit} "
              f"({_t(login.role)})")
    # One line in both languages (the browser tests read the folder and the password from it).
    print(_t("cli.demo.certs", folder=str(certs), password=demo.certs_password))
    say("cli.demo.rebuilt", path=path)
    say("cli.demo.idle", admin=settings.admin_session_idle_minutes, other=settings.session_idle_minutes)
    if not settings.require_admin_mfa:
        say("cli.demo.mfa_off")
    print(rule)
    sys.stdout.flush()


def cmd_plugins(args) -> int:
    settings = _settings(args)
    from core.plugins import build_plugin_manager
    from core.registry import build_registry

    pm = build_plugin_manager(settings)
    build_registry(pm, settings)
    rows = [(i.name, i.version or "-", i.source, i.status, i.stage or "-", i.summary or "")
            for i in sorted(pm.infos.values(), key=lambda i: i.name)]
    head = ("plugin", "version", "source", "status", "stage", "summary")
    widths = [max(len(str(r[c])) for r in rows + [head]) for c in range(5)]
    for row in [head] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) + "  " + row[5])
    return 1 if any(i.status == "failed" for i in pm.infos.values()) else 0


def cmd_plugin_new(args) -> int:
    """``baocao plugin new NAME``: a working package skeleton (core.scaffold); needs no settings."""
    from core.scaffold import new_plugin

    root = new_plugin(args.name, args.dir, reserved=core_commands(build_parser()))
    print(_t("scaffold.created", name=args.name, path=str(root)))
    return 0


def cmd_worker(args) -> int:
    from core.jobs import run_worker

    settings = _settings(args, server=True)
    pm, registry, _ = _prepare(settings, process="worker")
    run_worker(settings, workers=args.workers, plugins=(pm, registry))  # the plugins' jobs too
    return 0


def cmd_regimes_open_due(args) -> int:
    """Open the started periods of every issued periodic regime now (what the worker's hourly
    ``core.open_periods`` job does); running it again creates nothing new."""
    import anyio

    from core.db import db
    from core.regimes import regimes
    from core.reporting import opening as reports
    from core.startup import start_plugins

    settings = _settings(args)
    pm, registry, _ = _prepare(settings)
    # As the web application starts: the plugins' start-up hooks load what their regimes' forms name.
    anyio.run(start_plugins, pm, registry, settings)
    with db.connection_context():
        result = reports.open_due_periods(calendar=regimes.work_calendar(settings))
    print(_t("cli.regimes.opened", periods=result.periods, reports=result.reports))
    return 0


def cmd_units_export(args) -> int:
    """Write the units in force on a date (default today) as CSV or XLSX (issue 4)."""
    from core.units import files as unit_io
    from core.db import db

    settings = _settings(args)
    _prepare(settings)
    try:
        at = unit_io.parse_date(args.at or "")
    except ValueError:
        print(_t("units.asat.error.date"), file=sys.stderr)
        return 2
    with db.connection_context():
        rows = unit_io.export_rows(at)
    fmt = args.format or ("xlsx" if (args.output or "").lower().endswith(".xlsx") else "csv")
    body = unit_io.to_xlsx(rows) if fmt == "xlsx" else unit_io.to_csv(rows)
    if args.output:
        Path(args.output).write_bytes(body)
        print(_t("cli.units.exported", count=len(rows) - 1, file=args.output))
    else:
        sys.stdout.buffer.write(body)
    return 0


def cmd_units_import(args) -> int:
    """Check a CSV/XLSX file of units and, unless --dry-run, write it all or nothing (issue 4)."""
    from core.units import files as unit_io
    from core.db import db

    settings = _settings(args)
    _prepare(settings)
    path = Path(args.file)
    if not path.is_file():
        print(_t("units.io.error.no_file"), file=sys.stderr)
        return 2
    with db.connection_context():
        plan = unit_io.parse(path.read_bytes(), path.name)
        catalog = core_catalog()
        for error in plan.errors:
            lines = [catalog.gettext(lang, "cli.units.row_error", row=error.row, column=error.column,
                                     message=catalog.gettext(lang, error.key, **error.params)) for lang in ("vi", "en")]
            print(" / ".join(dict.fromkeys(lines)), file=sys.stderr)
        if plan.errors:
            print(_t("units.io.has_errors", count=len(plan.errors)), file=sys.stderr)
            return 1
        counts = plan.counts()
        print(_t("units.io.summary", create=counts["create"], update=counts["update"], unchanged=counts["unchanged"]))
        if not args.dry_run:
            unit_io.apply(plan, filename=path.name)
            print(_t("cli.units.written"))
    return 0


def cmd_audit_verify(args) -> int:
    """Walk the audit chain: one line, exit 0 when intact, 1 naming the first broken event.
    Reads only: no migration runs, nothing is written."""
    from core import audit
    from core.db import close_db, db, init_db

    settings = _settings(args)
    init_db(settings.database_url)
    try:
        with db.connection_context():
            if audit.AuditEvent._meta.table_name not in db.get_tables():
                print(_t("cli.audit.no_table"), file=sys.stderr)
                return 2
            result = audit.verify()
    finally:
        close_db()
    if result.ok:
        print(_t("cli.audit.ok", count=result.checked))
        return 0
    key = {"link": "cli.audit.broken_link", "content": "cli.audit.broken_content"}[result.reason]
    when = result.broken_at.strftime("%Y-%m-%d %H:%M:%S UTC") if result.broken_at else "-"
    print(_t(key, id=result.broken_id, time=when, action=result.broken_action, checked=result.checked))
    return 1


def cmd_incident_export(args) -> int:
    """The incident evidence ZIP of a time window (core.incident, security.md VN-02): written beside
    the target and moved into place only once the export is in the audit trail."""
    import getpass
    import socket

    from core import incident
    from core.db import db

    settings = _settings(args)
    out = Path(args.out)
    if out.exists():
        raise BaocaoError("incident.error.out_exists", path=str(out))
    _prepare(settings)
    partial = out.with_name(out.name + ".partial")
    try:
        with db.connection_context():
            window = incident.window(args.start, args.end, unit_code=args.unit or "", username=args.user or "")
            result = incident.export(partial, window, exported_by={
                "via": "command", "os_user": getpass.getuser(), "host": socket.gethostname()})
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    counts = result.counts
    print(_t("incident.cli.exported", file=str(out), events=counts["audit.csv"], logins=counts["logins.csv"],
             sessions=counts["sessions.csv"], users=counts["affected_users.csv"],
             reports=counts["affected_reports.csv"]))
    chain = result.manifest["audit_chain"]
    if not chain["verified"]:
        print(_t("incident.cli.chain_broken", id=chain["broken_id"]), file=sys.stderr)
        return 1
    return 0


def cmd_integrity_verify(args) -> int:
    """Hash again every stored item that carries a hash (core.integrity): exit 0 and a count, or 1
    and a table of the mismatches. Reads only: no migration runs, nothing is written."""
    from core import integrity
    from core.db import close_db, db, init_db
    from core.reporting.versions import ReportVersion

    settings = _settings(args)
    init_db(settings.database_url)
    try:
        with db.connection_context():
            if ReportVersion._meta.table_name not in db.get_tables():
                print(_t("integrity.cli.no_table"), file=sys.stderr)
                return 2
            result = integrity.verify_stored(settings)
    finally:
        close_db()
    catalog = core_catalog()

    def summary(key: str, count: int) -> str:  # each language names the kinds checked in its own words
        return " / ".join(catalog.gettext(lang, key, count=count, counts=", ".join(
            f"{catalog.gettext(lang, f'integrity.kind.{kind}')}: {n}" for kind, n in result.checked.items()))
            for lang in ("vi", "en"))

    if result.ok:
        print(summary("integrity.cli.ok", sum(result.checked.values())))
        return 0
    print(summary("integrity.cli.mismatches", len(result.mismatches)))
    head = tuple(_t(f"integrity.cli.col.{c}") for c in ("kind", "id", "report", "unit", "expected", "actual"))
    rows = [(_t(f"integrity.kind.{m.kind}"), str(m.id), str(m.report_id or "-"), m.unit or "-", m.expected,
             _t("integrity.cli.missing") if m.missing else m.actual) for m in result.mismatches]
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(5)]
    for row in [head, *rows]:
        print("  ".join(v.ljust(n) for v, n in zip(row, widths)) + "  " + row[5])
    return 1


def cmd_backup(args) -> int:
    """One encrypted archive of the database and the stored files (core.backup, docs/backup.md)."""
    from core import backup

    settings = _settings(args)
    archive = backup.create_backup(settings, args.to)
    print(_t("backup.cli.done", path=str(archive.path), size=archive.size, sha256=archive.sha256))
    return 0


def cmd_backup_keygen(args) -> int:
    """A new backup key; needs no settings, never overwrites a file."""
    from core.backup_crypto import write_new_key

    print(_t("backup.cli.keygen", path=str(write_new_key(args.file))))
    return 0


def cmd_backup_verify(args) -> int:
    """Decrypt an archive and check every part against its manifest: exit 0 and a summary, or
    exit 1 and one line saying what is wrong. Touches no database."""
    from core import backup

    settings = _settings(args)
    try:
        manifest = backup.verify_archive(settings, args.file, key_file=args.key_file)
    except BaocaoError as exc:
        print(f"baocao: {exc}", file=sys.stderr)
        return 1
    print(_t("backup.cli.verified", created=manifest["created"], version=manifest["baocao_version"],
             database=manifest["database"], tables=len(manifest["tables"]), rows=sum(manifest["tables"].values()),
             events=manifest["audit"]["count"], files=len(manifest["files"])))
    return 0


def cmd_restore(args) -> int:
    """Restore an archive into an empty database and files folder, then check it against its
    manifest; success is printed only after every check passed."""
    from core import backup

    settings = _settings(args)
    done = backup.restore_archive(settings, args.file, database_url=args.database_url, files_dir=args.files_dir,
                                  key_file=args.key_file)
    print(_t("backup.cli.restored", tables=len(done.manifest["tables"]), rows=done.rows, events=done.events,
             files=len(done.manifest["files"]), files_dir=str(done.files_dir)))
    return 0


WEEKDAYS = {"vi": ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật"),
            "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


def _dates(values: list[str] | None) -> list:
    import datetime as dt

    out = []
    for value in values or ():
        try:
            out.append(dt.date.fromisoformat(value))
        except ValueError:
            raise BaocaoError("periods.error.date", value=value) from None
    return out


def cmd_reminders_send(args) -> int:
    """Send the reminders due today now (what the worker's ``core.send_reminders`` does in office
    hours); running it again, or after a crash, sends nothing twice."""
    from core import mailer
    from core.db import db
    from core.reporting import reminders

    settings = _settings(args)
    _prepare(settings)  # e-mail is queued into the outbox; the worker delivers it
    with db.connection_context(), mailer.sending(settings):
        result = reminders.send_due(settings=settings)
    print(_t("cli.reminders.sent", already=result.already, **result.sent))
    return 0


def _progress_line():
    """``progress(done, total)`` drawn as one line of the terminal that rewrites itself (a
    province's year takes minutes); the line is ended when the count reaches the total."""

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        end = "\n" if done >= total else ""
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show


def cmd_consolidation_rebuild(args) -> int:
    """Build the running aggregates of live consolidation again from the accepted reports (after
    an upgrade, or to repair them); the same numbers as every acceptance keeps."""
    from core.db import db
    from core.reporting import consolidation

    settings = _settings(args)
    _prepare(settings)
    with db.connection_context():
        result = consolidation.rebuild(regime_code=args.regime or None, period=args.period or None,
                                       progress=_progress_line() if sys.stderr.isatty() else None)
    print(_t("cli.consolidation.rebuilt", periods=result.periods, scopes=result.scopes, members=result.members))
    return 0


def cmd_periods(args) -> int:
    """A year's cut-off windows (Decree 09/2019 Art. 12) and, with ``--deadline``, each window's
    deadline, checked against Art. 8 cl. 5. Pure computation: no settings, no database."""
    import json

    from core.regimes.deadlines import DeadlineRule, check_chain
    from core.regimes.periods import check_frequency, check_year, windows
    from core.regimes.workdays import WorkCalendar

    check_frequency(args.frequency)
    check_year(args.year)
    rule = DeadlineRule.parse(args.deadline) if args.deadline is not None else None
    calendar = WorkCalendar(extra_days_off=_dates(args.day_off), make_up_days=_dates(args.make_up_day))
    lang, catalog = args.lang, core_catalog()
    rows = []
    for w in windows(args.frequency, args.year):
        level = check_chain(w, {"1": rule}, calendar)[0] if rule else None
        rows.append((w, level))
    if args.json:
        print(json.dumps([{
            "frequency": w.frequency, "year": w.year, "index": w.index, "label": w.label(lang),
            "start": w.start.isoformat(), "end": w.end.isoformat(), "iso_interval": w.iso_interval,
            "deadline_rule": str(rule) if rule else None,
            "deadline": level.deadline.isoformat() if level else None,
            "nominal_deadline": level.nominal.isoformat() if level else None,
        } for w, level in rows], ensure_ascii=False, indent=1))
        return 0

    def day(d) -> str:
        return f"{WEEKDAYS[lang][d.weekday()]} {d:%d/%m/%Y}"

    head = tuple(catalog.gettext(lang, f"cli.periods.{c}") for c in ("label", "window", "interval", "deadline"))
    table = []
    for w, level in rows:
        deadline = "-"
        if level:
            deadline = day(level.deadline)
            if level.nominal != level.deadline:
                deadline += f" ({catalog.gettext(lang, 'cli.periods.moved', day=day(level.nominal))})"
        table.append((w.label(lang), w.interval_text(), w.iso_interval, deadline))
    widths = [max(len(r[c]) for r in [head, *table]) for c in range(3)]
    for row in [head, *table]:
        print("  ".join(v.ljust(n) for v, n in zip(row, widths)) + "  " + row[3])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="baocao", description=_t("cli.description"))
    parser.add_argument("--version", action="version", version=f"baocao {__version__}")
    parser.add_argument("--settings", help=_t("cli.help.settings"))
    parser.add_argument("-v", "--verbose", action="store_true", help=_t("cli.help.verbose"))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help=_t("cli.help.init"))
    p.add_argument("--unit-code", default="44")
    p.add_argument("--unit-name", default="Tỉnh Quảng Trị")
    p.add_argument("--unit-kind", default="province")
    p.add_argument("--admin", default="quantri")
    p.add_argument("--admin-name", default="Quản trị hệ thống")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help=_t("cli.help.serve"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help=_t("cli.help.demo"))
    p.add_argument("--database", default="baocao-demo.db", help=_t("cli.help.demo_database"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-serve", action="store_true", help=_t("cli.help.no_serve"))
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("migrate", help=_t("cli.help.migrate"))
    p.add_argument("--without-backup", action="store_true", help=_t("migrate.cli.help_without_backup"))
    p.set_defaults(func=cmd_migrate)
    sub.add_parser("plugins", help=_t("cli.help.plugins")).set_defaults(func=cmd_plugins)

    p = sub.add_parser("plugin", help=_t("cli.help.plugin"))
    plugin_sub = p.add_subparsers(dest="plugin_tool", required=True)
    q = plugin_sub.add_parser("new", help=_t("cli.help.plugin_new"))
    q.add_argument("name", metavar="NAME")
    q.add_argument("--dir", default=".", help=_t("cli.help.plugin_new_dir"))
    q.set_defaults(func=cmd_plugin_new)

    p = sub.add_parser("worker", help=_t("cli.help.worker"))
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("audit", help=_t("cli.help.audit"))
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help=_t("cli.help.audit_verify")).set_defaults(func=cmd_audit_verify)

    p = sub.add_parser("incident", help=_t("incident.cli.help"))
    incident_sub = p.add_subparsers(dest="incident_command", required=True)
    q = incident_sub.add_parser("export", help=_t("incident.cli.help_export"))
    q.add_argument("--from", dest="start", required=True, metavar="ISO", help=_t("incident.cli.help_from"))
    q.add_argument("--to", dest="end", required=True, metavar="ISO", help=_t("incident.cli.help_to"))
    q.add_argument("--unit", metavar="CODE", help=_t("incident.cli.help_unit"))
    q.add_argument("--user", metavar="USERNAME", help=_t("incident.cli.help_user"))
    q.add_argument("--out", required=True, metavar="FILE.zip", help=_t("incident.cli.help_out"))
    q.set_defaults(func=cmd_incident_export)

    p = sub.add_parser("integrity", help=_t("integrity.cli.help"))
    integrity_sub = p.add_subparsers(dest="integrity_command", required=True)
    integrity_sub.add_parser("verify", help=_t("integrity.cli.help_verify")).set_defaults(func=cmd_integrity_verify)

    # ``baocao backup`` alone makes an archive; ``keygen`` and ``verify`` are its sub-commands.
    p = sub.add_parser("backup", help=_t("backup.cli.help"))
    p.add_argument("--to", metavar="DIR", help=_t("backup.cli.help_to"))
    p.set_defaults(func=cmd_backup)
    backup_sub = p.add_subparsers(dest="backup_command", required=False)
    q = backup_sub.add_parser("keygen", help=_t("backup.cli.help_keygen"))
    q.add_argument("file", metavar="FILE")
    q.set_defaults(func=cmd_backup_keygen)
    q = backup_sub.add_parser("verify", help=_t("backup.cli.help_verify"))
    q.add_argument("file", metavar="FILE")
    q.add_argument("--key-file", metavar="FILE", help=_t("backup.cli.help_key_file"))
    q.set_defaults(func=cmd_backup_verify)

    p = sub.add_parser("restore", help=_t("backup.cli.help_restore"))
    p.add_argument("file", metavar="FILE")
    p.add_argument("--database-url", metavar="URL", help=_t("backup.cli.help_database_url"))
    p.add_argument("--files-dir", metavar="DIR", help=_t("backup.cli.help_files_dir"))
    p.add_argument("--key-file", metavar="FILE", help=_t("backup.cli.help_key_file"))
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("units", help=_t("cli.help.units"))
    units_sub = p.add_subparsers(dest="units_command", required=True)
    q = units_sub.add_parser("export", help=_t("cli.help.units_export"))
    q.add_argument("--at", help="30/06/2025, 2025-06-30")
    q.add_argument("--format", choices=("csv", "xlsx"))
    q.add_argument("--output", "-o")
    q.set_defaults(func=cmd_units_export)
    q = units_sub.add_parser("import", help=_t("cli.help.units_import"))
    q.add_argument("file")
    q.add_argument("--dry-run", action="store_true")
    q.set_defaults(func=cmd_units_import)

    p = sub.add_parser("regimes", help=_t("cli.help.regimes"))
    regimes_sub = p.add_subparsers(dest="regimes_command", required=True)
    regimes_sub.add_parser("open-due", help=_t("cli.help.regimes_open_due")).set_defaults(func=cmd_regimes_open_due)

    p = sub.add_parser("reminders", help=_t("cli.help.reminders"))
    reminders_sub = p.add_subparsers(dest="reminders_command", required=True)
    reminders_sub.add_parser("send", help=_t("cli.help.reminders_send")).set_defaults(func=cmd_reminders_send)

    p = sub.add_parser("consolidation", help=_t("cli.help.consolidation"))
    consolidation_sub = p.add_subparsers(dest="consolidation_command", required=True)
    q = consolidation_sub.add_parser("rebuild", help=_t("cli.help.consolidation_rebuild"))
    q.add_argument("--regime", metavar="CODE")
    q.add_argument("--period", metavar="YYYY-MM-DD/YYYY-MM-DD")
    q.set_defaults(func=cmd_consolidation_rebuild)

    # --frequency is checked by cmd_periods, not by ``choices``: a bad value is one line, exit 2.
    p = sub.add_parser("periods", help=_t("cli.help.periods"))
    p.add_argument("--frequency", required=True, help="monthly, quarterly, half_year, nine_months, annual")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--deadline", help="2wd, day:20")
    p.add_argument("--day-off", action="append", metavar="YYYY-MM-DD")
    p.add_argument("--make-up-day", action="append", metavar="YYYY-MM-DD")
    p.add_argument("--lang", choices=("vi", "en"), default="vi")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_periods)
    return parser


def core_commands(parser: argparse.ArgumentParser) -> set[str]:
    return set(_subcommands(parser).choices)


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def add_plugin_commands(parser: argparse.ArgumentParser, pm) -> None:
    """``baocao <plugin> <command> …`` for each healthy plugin implementing ``register_commands``.

    Each plugin gets its own sub-parsers under its own name, so it can neither add a top-level
    command nor shadow a core one; a plugin whose name is a core command gets none (refused and
    recorded against it). A plugin whose hook raises is recorded and its commands refuse to run.
    """
    from core.errors import PluginError

    top = _subcommands(parser)
    core = core_commands(parser)
    for impl in reversed(pm.hook.register_commands.get_hookimpls()):
        name = impl.plugin_name
        info = pm.infos.get(name)
        if info is None or not info.ok:
            continue
        if name in core:
            pm.record_error(name, "command", PluginError("plugin.error.command_clash", plugin=name, command=name))
            continue
        plugin_parser = top.add_parser(name, help=_t("cli.help.plugin_commands", plugin=name))
        plugin_parser.set_defaults(func=cmd_plugin, plugin_namespace=name)
        commands = plugin_parser.add_subparsers(dest="plugin_command", metavar="COMMAND", required=True)
        before = info.errors[0] if info.errors else None
        pm.call_each("register_commands", enabled={name}, stage="contribution", subparsers=commands)
        if info.errors and info.errors[0] is not before:  # its hook raised: none of its commands runs
            plugin_parser.set_defaults(refused=info.errors[0][1])


def cmd_plugin(args) -> int:
    """Run a plugin's command: settings, database and migrations as for any command, then its
    ``handler(args, settings)`` inside a database connection."""
    from core.db import db
    from core.errors import PluginError

    if getattr(args, "refused", None):
        raise PluginError("plugin.error.command_failed", plugin=args.plugin_namespace, stage="command",
                          summary=args.refused)
    handler = getattr(args, "handler", None)
    if not callable(handler):
        raise PluginError("plugin.error.command_handler", plugin=args.plugin_namespace, command=args.plugin_command)
    settings = _settings(args)
    pm, _, _ = _prepare(settings)
    info = pm.infos.get(args.plugin_namespace)
    if info is None or not info.ok:
        raise PluginError("plugin.error.command_failed", plugin=args.plugin_namespace,
                          stage=info.stage if info else "-", summary=info.summary if info else "-")
    with db.connection_context():
        status = handler(args, settings)
    return 0 if status is None else int(status)


def _with_plugin_commands(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Load the plugins' commands only when the command is not the core's (or for ``--help``):
    core commands never depend on plugins loading, and ``baocao periods`` needs no settings."""
    from core.plugins import build_plugin_manager

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--settings")
    pre.add_argument("-v", "--verbose", action="store_true")
    known, rest = pre.parse_known_args(argv)
    word = next((w for w in rest if not w.startswith("-")), None)
    if word in core_commands(parser):
        return
    try:
        settings = _settings(known)
        pm = build_plugin_manager(settings)
    except BaocaoError as exc:
        if word is None:  # --help without usable settings: the core's commands only
            return
        raise SystemExit(f"baocao: {exc}") from None
    add_plugin_commands(parser, pm)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    _with_plugin_commands(parser, argv)
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        configure_logging(None, args.verbose)
    try:
        # A plugin's command always goes through cmd_plugin, whatever ``func`` its parser set.
        return cmd_plugin(args) if getattr(args, "plugin_namespace", None) else args.func(args)
    except BaocaoError as exc:
        log.debug("stopped", exc_info=True)
        print(f"baocao: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 — the operator gets one line, the log the rest
        log.error("unexpected error", exc_info=True)
        print(_t("cli.unexpected", kind=type(exc).__name__, detail=str(exc).split("\n")[0][:200]),
              file=sys.stderr)
        return 1
    finally:
        while _RECORDERS:
            _RECORDERS.pop().flush()


if __name__ == "__main__":
    sys.exit(main())
