"""Settings: a TOML file, then environment variables, with indirection for secrets.

Precedence (highest first): ``BAOCAO_*`` environment variables, the TOML file
named by ``BAOCAO_SETTINGS`` (or passed explicitly), the defaults below.

A secret may be written as ``{ "$env" = "VAR" }`` or ``{ "$file" = "/run/secrets/x" }``
in the TOML file, or given as ``BAOCAO_SECRET_KEY_FILE`` in the environment, so
that no secret needs to sit in a file under version control.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from core.clock import DEFAULT_TIME_ZONE, zone_for
from core.errors import SettingsError
from core.safe_input import parse_int

MODES = ("development", "production", "test")
# Values that show a secret was copied from an example and never changed.
SAMPLE_SECRETS = {"", "changeme", "change-me", "secret", "sample", "example", "dev", "development",
                  "insecure", "baocao", "please-change-me", "xxx"}
MIN_SECRET_LENGTH = 32
# \Z, not $: "$" also matches before a trailing newline, letting "name\n" through.
PLUGIN_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,30}\Z")
SECRET_KEY_RE = re.compile(r"secret|key|password|token|dsn", re.I)
# Whole-number settings for which 0 is a choice (no limit), not a mistake.
ZERO_MEANS_NO_LIMIT = {"max_sessions_per_person", "api_requests_per_minute", "exports_per_minute"}
# URIs printed in /.well-known/security.txt (RFC 9116): visible ASCII only, so never a second line.
HTTPS_URL_RE = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[\x21-\x7e]*)?\Z")
MAILTO_RE = re.compile(r"^mailto:[\x21-\x3f\x41-\x7e]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\Z")  # one address
BOOLEAN_WORDS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False,
                 "off": False}


@dataclass(frozen=True)
class PluginSettings:
    disabled: tuple[str, ...] = ()
    allow_external: tuple[str, ...] = ()
    config: dict = field(default_factory=dict)  # [plugins.<name>] tables

    def for_plugin(self, name: str) -> dict:
        return dict(self.config.get(name, {}))


@dataclass(frozen=True)
class RegimeSettings:
    """Who may issue which reporting regime (section ``[regimes]``; defaults follow Decree 09/2019
    Art. 11 and the 2025 two-level government: see docs/settings.md)."""

    periodic_issuer_kinds: tuple[str, ...] = ("province",)
    periodic_preparer_kinds: tuple[str, ...] = ("department",)
    request_issuer_kinds: tuple[str, ...] = ("province", "district", "commune", "department")
    request_recipients: str = "subtree"  # "subtree" (plus organisations and individuals) or "any"


_REGIME_KINDS = ("province", "department", "district", "commune", "agency", "organisation", "individual")


def _regime_settings(raw, source: str) -> RegimeSettings:
    if not isinstance(raw, dict):
        raise SettingsError("settings.error.bad_value", setting="regimes", value=str(raw)[:60])
    values: dict = {}
    for key, value in raw.items():
        where = f"regimes.{key}"
        if key == "request_recipients":
            if value not in ("subtree", "any"):
                raise SettingsError("settings.error.bad_value", setting=where, value=str(value)[:60])
            values[key] = value
        elif key in ("periodic_issuer_kinds", "periodic_preparer_kinds", "request_issuer_kinds"):
            value = _coerce("allowed_hosts", value, where)
            if any(kind not in _REGIME_KINDS for kind in value):
                raise SettingsError("settings.error.bad_value", setting=where, value=", ".join(value)[:60])
            values[key] = value
        else:
            raise SettingsError("settings.error.unknown", setting=where, source=source)
    return RegimeSettings(**values)


@dataclass(frozen=True)
class Settings:
    mode: str = "development"
    database_url: str = "sqlite:///baocao.db"
    # A read-only replica of the PostgreSQL database (docs/topology.md): the leaders' dashboard, the
    # figures explorer and the exports read from it when set; empty, or down: from database_url.
    database_replica_url: str = ""
    # Where the worker's queue lives (core.jobs): empty, huey's SQL storage in the database above;
    # "redis://host:6379/0" a Redis server shared by every `baocao worker` (extra [redis]).
    job_broker: str = ""
    secret_key: str = ""
    language: str = "vi"
    allowed_hosts: tuple[str, ...] = ("*",)
    session_idle_minutes: int = 15
    session_lifetime_hours: int = 12
    admin_session_idle_minutes: int = 5  # system administrators (security.md SESS-04)
    # Sessions one person may hold at once; a login past it ends their least recently used one (SESS-07). 0: no limit.
    max_sessions_per_person: int = 10
    lockout_threshold: int = 5  # consecutive failed logins that lock an account (AUTH-06)
    lockout_minutes: int = 30
    login_rate_per_minute: int = 20  # login attempts per client address per minute (AUTH-06)
    # Per caller (API token, person or client address) and minute, else 429 (API-04, core.rate_limits). 0: no limit.
    api_requests_per_minute: int = 300
    exports_per_minute: int = 20
    temp_password_hours: int = 72  # an administrator-issued password expires (AUTH-05)
    inactive_days: int = 45  # accounts unused this long are disabled (AUTH-10)
    # Reports not sent yet are reminded this many working days before their deadline (core.reporting.reminders);
    # a regime may choose its own number (or none: only on the deadline day).
    reminder_days_before: int = 2
    require_admin_mfa: bool = True  # administrators must use two-factor authentication (AUTH-08)
    reauth_minutes: int = 5  # sensitive actions ask for the password again after this long (SESS-06)
    log_level: str = "INFO"
    log_file: str = ""  # full log with tracebacks; empty: standard error
    # "text" (one readable line a record) or "json" (one JSON object a line, for a log collector: core.logs).
    log_format: str = "text"
    # The bearer token Prometheus sends to /metrics (docs/observability.md); empty: /metrics answers 404.
    metrics_token: str = ""
    files_dir: str = ""  # report attachments, outside the web root; empty: beside a SQLite database, else ./baocao-files
    attachment_max_mb: int = 20  # one attachment's size limit
    # Backups (core.backup, docs/backup.md): the worker's daily archive goes to backup_dir, encrypted with
    # the key in backup_key_file (kept apart from the backups); both empty: no daily backup.
    backup_dir: str = ""
    backup_key_file: str = ""
    backup_keep_daily: int = 7  # retention: the newest archive of each of the last N days, weeks, months
    backup_keep_weekly: int = 4
    backup_keep_monthly: int = 12
    # A migration on a database holding data is preceded by a backup (core.migrate, security.md DB-08);
    # in production, without backup_key_file, it is refused unless this says to go on without one.
    migrate_without_backup: bool = False
    # E-mail notifications (core.reporting.notifications): sent only when smtp_host is set.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "baocao@localhost"
    smtp_starttls: bool = False
    public_url: str = ""  # the address people open the system at, for links in e-mails
    # /.well-known/security.txt (RFC 9116, security.md VN-03): where a finder reports a vulnerability
    # (mailto: or https: URIs, the preferred first) and the disclosure policy's page; no contact: 404.
    security_contact: tuple[str, ...] = ()
    security_policy_url: str = ""
    # The outbox (core.outbox): a message is given up after this many failed attempts.
    outbox_max_attempts: int = 8
    # Digital signatures: a submission must carry a valid signature (TT 41/2017, TT 22/2020).
    require_signature: bool = True
    # Extended key usages accepted on a signer certificate that has the extension (security.md
    # SIG-04): client authentication, e-mail protection, document signing (RFC 9336), Microsoft
    # and Adobe document signing. A certificate without the extension is accepted on key usage.
    signature_ekus: tuple[str, ...] = ("1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36",
                                       "1.3.6.1.4.1.311.10.3.12", "1.2.840.113583.1.1.5")
    # Consolidation counts accepted reports; this also counts submitted ones not yet reviewed.
    consolidate_submitted: bool = False
    time_zone: str = DEFAULT_TIME_ZONE  # the day people live in (core.clock); stored times stay UTC
    # The Government's yearly moves of working days (core.regimes.workdays), besides those an administrator
    # enters on /admin/calendar: extra days off (Tết bridges) and Saturdays worked in exchange.
    extra_days_off: tuple[dt.date, ...] = ()
    make_up_days: tuple[dt.date, ...] = ()
    plugins: PluginSettings = field(default_factory=PluginSettings)
    regimes: RegimeSettings = field(default_factory=RegimeSettings)  # [regimes]: who issues what
    source: str = "defaults"  # where the settings came from, shown to the operator

    @property
    def production(self) -> bool:
        return self.mode == "production"

    @property
    def secure_cookies(self) -> bool:
        return self.mode == "production"

    def plugin(self, name: str) -> dict:
        return self.plugins.for_plugin(name)

    def files_root(self) -> Path:
        """Where uploaded files live: never under the web root, never served by path."""
        if self.files_dir:
            return Path(self.files_dir)
        if self.database_url.startswith("sqlite:///") and ":memory:" not in self.database_url:
            db_path = Path(self.database_url[len("sqlite:///"):])
            return db_path.with_name(db_path.name + ".files")
        return Path("baocao-files")

    def check_for_production(self) -> None:
        """Refuse settings that are only fit for a developer's machine."""
        if not self.production:
            return
        secret = self.secret_key.strip()
        if secret.lower() in SAMPLE_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            raise SettingsError("settings.error.weak_secret", setting="secret_key",
                                env="BAOCAO_SECRET_KEY", length=MIN_SECRET_LENGTH)
        if "*" in self.allowed_hosts:
            raise SettingsError("settings.error.hosts_wildcard", setting="allowed_hosts")


_TOP_KEYS = {f.name for f in fields(Settings)} - {"plugins", "source", "regimes"}
_PLUGIN_KEYS = {"disabled", "allow_external"}
_ENV = {
    "BAOCAO_MODE": "mode",
    "BAOCAO_DATABASE_URL": "database_url",
    "BAOCAO_DATABASE_REPLICA_URL": "database_replica_url",
    "BAOCAO_JOB_BROKER": "job_broker",
    "BAOCAO_SECRET_KEY": "secret_key",
    "BAOCAO_LANGUAGE": "language",
    "BAOCAO_ALLOWED_HOSTS": "allowed_hosts",
    "BAOCAO_SESSION_IDLE_MINUTES": "session_idle_minutes",
    "BAOCAO_SESSION_LIFETIME_HOURS": "session_lifetime_hours",
    "BAOCAO_ADMIN_SESSION_IDLE_MINUTES": "admin_session_idle_minutes",
    "BAOCAO_MAX_SESSIONS_PER_PERSON": "max_sessions_per_person",
    "BAOCAO_LOCKOUT_THRESHOLD": "lockout_threshold",
    "BAOCAO_LOCKOUT_MINUTES": "lockout_minutes",
    "BAOCAO_LOGIN_RATE_PER_MINUTE": "login_rate_per_minute",
    "BAOCAO_API_REQUESTS_PER_MINUTE": "api_requests_per_minute",
    "BAOCAO_EXPORTS_PER_MINUTE": "exports_per_minute",
    "BAOCAO_TEMP_PASSWORD_HOURS": "temp_password_hours",
    "BAOCAO_INACTIVE_DAYS": "inactive_days",
    "BAOCAO_REMINDER_DAYS_BEFORE": "reminder_days_before",
    "BAOCAO_REQUIRE_ADMIN_MFA": "require_admin_mfa",
    "BAOCAO_REAUTH_MINUTES": "reauth_minutes",
    "BAOCAO_LOG_LEVEL": "log_level",
    "BAOCAO_LOG_FILE": "log_file",
    "BAOCAO_LOG_FORMAT": "log_format",
    "BAOCAO_METRICS_TOKEN": "metrics_token",
    "BAOCAO_FILES_DIR": "files_dir",
    "BAOCAO_ATTACHMENT_MAX_MB": "attachment_max_mb",
    "BAOCAO_BACKUP_DIR": "backup_dir",
    "BAOCAO_BACKUP_KEY_FILE": "backup_key_file",
    "BAOCAO_BACKUP_KEEP_DAILY": "backup_keep_daily",
    "BAOCAO_BACKUP_KEEP_WEEKLY": "backup_keep_weekly",
    "BAOCAO_BACKUP_KEEP_MONTHLY": "backup_keep_monthly",
    "BAOCAO_MIGRATE_WITHOUT_BACKUP": "migrate_without_backup",
    "BAOCAO_SMTP_HOST": "smtp_host",
    "BAOCAO_SMTP_PORT": "smtp_port",
    "BAOCAO_SMTP_USER": "smtp_user",
    "BAOCAO_SMTP_PASSWORD": "smtp_password",
    "BAOCAO_SMTP_FROM": "smtp_from",
    "BAOCAO_SMTP_STARTTLS": "smtp_starttls",
    "BAOCAO_PUBLIC_URL": "public_url",
    "BAOCAO_SECURITY_CONTACT": "security_contact",
    "BAOCAO_SECURITY_POLICY_URL": "security_policy_url",
    "BAOCAO_OUTBOX_MAX_ATTEMPTS": "outbox_max_attempts",
    "BAOCAO_REQUIRE_SIGNATURE": "require_signature",
    "BAOCAO_SIGNATURE_EKUS": "signature_ekus",
    "BAOCAO_CONSOLIDATE_SUBMITTED": "consolidate_submitted",
    "BAOCAO_TIME_ZONE": "time_zone",
    "BAOCAO_EXTRA_DAYS_OFF": "extra_days_off",
    "BAOCAO_MAKE_UP_DAYS": "make_up_days",
}
_DATE_LISTS = {"extra_days_off", "make_up_days"}
_ENV_PLUGINS = {"BAOCAO_PLUGINS_DISABLED": "disabled", "BAOCAO_PLUGINS_ALLOW_EXTERNAL": "allow_external"}
_ENV_OTHER = {"BAOCAO_SETTINGS", "BAOCAO_SECRET_KEY_FILE", "BAOCAO_TEST_DATABASE_URL"}


def resolve_secret(value, where: str, env=None):
    """Follow ``{"$env": NAME}`` and ``{"$file": PATH}``; other values pass through."""
    # The environment ``load_settings`` was given, not always os.environ: the
    # same environment decides both the BAOCAO_* variables and the indirections.
    env = os.environ if env is None else env
    if not isinstance(value, dict):
        return value
    if set(value) == {"$env"}:
        name = value["$env"]
        if name not in env:
            raise SettingsError("settings.error.env_missing", setting=where, env=name)
        return env[name]
    if set(value) == {"$file"}:
        path = Path(value["$file"])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError:
            raise SettingsError("settings.error.file_unreadable", setting=where, path=str(path)) from None
    return {k: resolve_secret(v, f"{where}.{k}", env) for k, v in value.items()}


def _dates(value, where: str) -> tuple[dt.date, ...]:
    """TOML dates or ISO texts (a list, or a comma-separated text from the environment)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise SettingsError("settings.error.bad_value", setting=where, value=str(value)[:60])
    days = []
    for item in value:
        if isinstance(item, str):
            try:
                item = dt.date.fromisoformat(item)
            except ValueError:
                raise SettingsError("settings.error.bad_value", setting=where, value=item[:60]) from None
        if not isinstance(item, dt.date) or isinstance(item, dt.datetime):
            raise SettingsError("settings.error.bad_value", setting=where, value=str(item)[:60])
        days.append(item)
    return tuple(sorted(set(days)))


def _coerce(name: str, value, where: str):
    if name in _DATE_LISTS:
        return _dates(value, where)
    default = getattr(Settings, name, None) if name != "allowed_hosts" else ("*",)
    if isinstance(default, bool):
        if isinstance(value, str) and value.strip().lower() in BOOLEAN_WORDS:  # from the environment
            value = BOOLEAN_WORDS[value.strip().lower()]
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        # Not "²": ASCII digits. 0 is read as a number here and refused below unless it means "no limit".
        if isinstance(value, str) and (number := parse_int(value.strip(), minimum=0)) is not None:
            value = number
        ok = isinstance(value, int) and not isinstance(value, bool) and (
            value > 0 or (value == 0 and name in ZERO_MEANS_NO_LIMIT))
    elif isinstance(default, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise SettingsError("settings.error.bad_value", setting=where, value=str(value)[:60])
    return value


def load_settings(path: str | os.PathLike | None = None, env: dict | None = None) -> Settings:
    """Read settings; raise ``SettingsError`` naming the first bad key."""
    env = os.environ if env is None else env
    path = path or env.get("BAOCAO_SETTINGS")
    raw: dict = {}
    source = "defaults"
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError("settings.error.file_missing", path=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError("settings.error.toml", path=str(path), detail=str(exc)) from None
        source = str(path)

    values: dict = {}
    plugin_raw = raw.pop("plugins", {})
    if "regimes" in raw:
        values["regimes"] = _regime_settings(raw.pop("regimes"), source)
    for key, value in raw.items():
        if key not in _TOP_KEYS:
            raise SettingsError("settings.error.unknown", setting=key, source=source)
        values[key] = _coerce(key, resolve_secret(value, key, env), key)
    if not isinstance(plugin_raw, dict):
        raise SettingsError("settings.error.bad_value", setting="plugins", value=str(plugin_raw)[:60])
    plugin_values: dict = {"config": {}}
    for key, value in plugin_raw.items():
        if key in _PLUGIN_KEYS:
            plugin_values[key] = _coerce("allowed_hosts", value, f"plugins.{key}")
        elif isinstance(value, dict) and PLUGIN_NAME_RE.match(key):
            plugin_values["config"][key] = resolve_secret(value, f"plugins.{key}", env)
        else:
            raise SettingsError("settings.error.unknown", setting=f"plugins.{key}", source=source)

    for var, value in env.items():
        if not var.startswith("BAOCAO_"):
            continue
        if var in _ENV:
            values[_ENV[var]] = _coerce(_ENV[var], value, var)
        elif var in _ENV_PLUGINS:
            plugin_values[_ENV_PLUGINS[var]] = _coerce("allowed_hosts", value, var)
        elif var not in _ENV_OTHER:
            raise SettingsError("settings.error.unknown_env", setting=var)
    if "BAOCAO_SECRET_KEY_FILE" in env and "BAOCAO_SECRET_KEY" not in env:
        values["secret_key"] = resolve_secret({"$file": env["BAOCAO_SECRET_KEY_FILE"]}, "BAOCAO_SECRET_KEY_FILE")

    settings = Settings(**values, plugins=PluginSettings(**plugin_values), source=source)
    if settings.mode not in MODES:
        raise SettingsError("settings.error.bad_value", setting="mode", value=settings.mode)
    if settings.language not in ("vi", "en"):
        raise SettingsError("settings.error.bad_value", setting="language", value=settings.language)
    if settings.log_format not in ("text", "json"):
        raise SettingsError("settings.error.bad_value", setting="log_format", value=settings.log_format[:60])
    if zone_for(settings.time_zone) is None:
        raise SettingsError("settings.error.bad_value", setting="time_zone", value=settings.time_zone[:60])
    if not 1 <= settings.reminder_days_before <= 10:
        raise SettingsError("settings.error.bad_value", setting="reminder_days_before",
                            value=str(settings.reminder_days_before))
    both = set(settings.extra_days_off) & set(settings.make_up_days)
    if both:  # a day is either off or worked, never both
        raise SettingsError("settings.error.bad_value", setting="make_up_days", value=min(both).isoformat())
    from core.db import parse_database_url

    parse_database_url(settings.database_url)  # a malformed URL is named now, not at first query
    if settings.database_replica_url:
        parse_database_url(settings.database_replica_url)
    if settings.job_broker and not re.match(r"^rediss?://", settings.job_broker):
        raise SettingsError("settings.error.bad_value", setting="job_broker", value=settings.job_broker[:60])
    # Written into security.txt as they are: a line break or a stray character would add a field.
    for contact in settings.security_contact:
        if not (MAILTO_RE.match(contact) or HTTPS_URL_RE.match(contact)):
            raise SettingsError("settings.error.bad_value", setting="security_contact", value=contact[:60])
    if settings.security_policy_url and not HTTPS_URL_RE.match(settings.security_policy_url):
        raise SettingsError("settings.error.bad_value", setting="security_policy_url",
                            value=settings.security_policy_url[:60])
    return settings


def with_overrides(settings: Settings, **changes) -> Settings:
    return replace(settings, **changes)


def redact(config: dict) -> dict:
    """Hide values whose key looks secret, for the administrator's screens."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out[key] = redact(value)
        elif SECRET_KEY_RE.search(key):
            out[key] = "••••••"
        else:
            out[key] = value
    return out
