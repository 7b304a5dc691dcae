"""Catalogues, language negotiation, Vietnamese number and date formats, search folding."""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import string
from decimal import Decimal
from pathlib import Path

import pytest

from core.i18n import (CORE_LOCALE_DIR, LANGUAGES, Catalog, locale_files, core_catalog, fold, format_date, format_datetime,
                       format_number, negotiate)

ROOT = Path(__file__).resolve().parents[2]
KEY_RE = re.compile(r"^[a-z_]+(\.[a-z0-9_]+)+$")


# -- numbers and dates ------------------------------------------------------------------------

@pytest.mark.parametrize("value, vi, en", [
    (1234.5, "1.234,5", "1,234.5"),
    (1234567, "1.234.567", "1,234,567"),
    (Decimal("1234567.25"), "1.234.567,25", "1,234,567.25"),
    (-9876.5, "-9.876,5", "-9,876.5"),
    (0, "0", "0"),
    (0.5, "0,5", "0.5"),
    (999, "999", "999"),
    ("1000", "1.000", "1,000"),
    (Decimal("120.500000"), "120,5", "120.5"),  # a stored numeric(…, 6) on PostgreSQL
    (Decimal("600.000000"), "600", "600"),
])
def test_format_number(value, vi, en):
    assert format_number(value, "vi") == vi
    assert format_number(value, "en") == en


def test_format_number_with_fixed_decimals():
    assert format_number(1234.5, "vi", decimals=2) == "1.234,50"
    assert format_number(1234.56, "en", decimals=1) == "1,234.6"


@pytest.mark.parametrize("value, decimals, vi", [
    (2.5, 0, "3"), (3.5, 0, "4"), (1234.5, 0, "1.235"), (2.345, 2, "2,35"), (-2.5, 0, "-3"), (0.125, 2, "0,13"),
])
def test_rounding_is_half_up_as_in_statistical_tables(value, decimals, vi):
    assert format_number(value, "vi", decimals=decimals) == vi


def test_format_number_of_nothing_is_empty():
    assert format_number(None) == "" and format_number("") == ""


def test_vietnamese_is_the_default_format():
    assert format_number(1234.5) == "1.234,5"
    assert format_date(dt.date(2026, 1, 5)) == "05/01/2026"


def test_format_date():
    day = dt.date(2026, 1, 5)
    assert format_date(day, "vi") == "05/01/2026"
    assert format_date(day, "en") == "2026-01-05"
    # A datetime is a stored (UTC) time: shown as the day it was in Vietnam (issue 12 item 6).
    assert format_date(dt.datetime(2025, 7, 1, 16, 59), "vi") == "01/07/2025"
    assert format_date(dt.datetime(2025, 7, 1, 23, 59), "vi") == "02/07/2025"
    assert format_date(None) == ""


def test_format_datetime_shows_vietnam_time():
    stored = dt.datetime(2026, 1, 5, 20, 30)  # naive UTC, as stored
    assert format_datetime(stored, "vi") == "03:30 06/01/2026"
    assert format_datetime(stored, "en") == "2026-01-06 03:30"
    assert format_datetime(stored.replace(tzinfo=dt.timezone.utc), "vi") == "03:30 06/01/2026"
    assert format_datetime(None) == ""


# -- negotiation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("header, expected", [
    ("en", "en"),
    ("vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7", "vi"),
    ("en-US,en;q=0.9,vi;q=0.8", "en"),
    ("fr-FR, fr;q=0.9, vi;q=0.5, en;q=0.4", "vi"),
    ("en;q=0.1, vi;q=0.9", "vi"),
    ("vi;q=0.3, en", "en"),
    ("EN-gb", "en"),
    ("fr, de", None),
    ("", None),
    (None, None),
    ("en;q=abc, vi", "vi"),
    ("en;q=0, vi;q=0.1", "vi"),
    ("en;q=0", None),
    ("*", None),
])
def test_negotiate(header, expected):
    assert negotiate(header) == expected


def test_negotiate_keeps_header_order_between_equal_qualities():
    assert negotiate("vi, en") == "vi" and negotiate("en, vi") == "en"


# -- folding for search -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, folded", [
    ("Dân số", "dan so"),
    ("Đồng Hới", "dong hoi"),
    ("ĐẮK LẮK", "dak lak"),
    ("Quảng Trị", "quang tri"),
    ("Thống kê tỉnh", "thong ke tinh"),
    ("plain ascii", "plain ascii"),
])
def test_fold(text, folded):
    assert fold(text) == folded


def test_fold_ignores_how_the_text_was_typed():
    import unicodedata

    word = "Nghệ An đường"
    assert fold(unicodedata.normalize("NFD", word)) == fold(unicodedata.normalize("NFC", word)) == "nghe an duong"


# -- catalogues ---------------------------------------------------------------------------------------

def load(path: Path) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8"))


def load_lang(directory: Path, lang: str) -> dict[str, str]:
    """Every file of one language in a locale folder (``vi.json`` and ``vi.<topic>.json``)."""
    out: dict[str, str] = {}
    for path in locale_files(directory, lang):
        out.update(load(path))
    return out


def catalogue_dirs() -> list[tuple[str | None, Path]]:
    dirs = [(None, CORE_LOCALE_DIR)]
    dirs += [(p.parent.name, p) for p in sorted((ROOT / "plugins").glob("*/locale"))]
    return dirs


def merged() -> dict[str, dict[str, str]]:
    catalog = Catalog()
    for _, directory in catalogue_dirs():
        catalog.add_dir(directory)  # the key namespaces: test_vi_and_en_have_the_same_keys_and_placeholders
    return catalog.messages


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("prefix, directory", catalogue_dirs(), ids=lambda v: str(v))
def test_vi_and_en_have_the_same_keys_and_placeholders(prefix, directory):
    vi, en = load_lang(directory, "vi"), load_lang(directory, "en")
    assert sorted(set(vi) ^ set(en)) == []
    # Each topic file has its twin in the other language.
    assert [p.name[3:] for p in locale_files(directory, "vi")] == [p.name[3:] for p in locale_files(directory, "en")]
    for key in vi:
        assert vi[key].strip() and en[key].strip(), key
        assert _fields(vi[key]) == _fields(en[key]), key
        assert KEY_RE.match(key), key
        if prefix:
            assert key.startswith(prefix + "."), key


def test_catalogue_files_are_nfc():
    import unicodedata

    for _, directory in catalogue_dirs():
        for lang in LANGUAGES:
            for path in locale_files(directory, lang):
                text = path.read_text(encoding="utf-8")
                assert unicodedata.normalize("NFC", text) == text, path


def test_gettext_falls_back_to_vietnamese_then_to_the_key():
    catalog = Catalog()
    catalog.messages = {"vi": {"a.only_vi": "Chỉ tiếng Việt", "a.hello": "Xin chào {name}"}, "en": {}}
    assert catalog.gettext("en", "a.only_vi") == "Chỉ tiếng Việt"
    assert catalog.gettext("fr", "a.hello", name="An") == "Xin chào An"
    assert catalog.gettext("en", "a.missing") == "a.missing"
    assert catalog.gettext("vi", "a.hello", wrong="x") == "Xin chào {name}"  # never crashes a page


# -- every key the code and the templates use exists in both languages --------------------------------

TEMPLATE_DIRS = [ROOT / "web" / "templates", *sorted((ROOT / "plugins").glob("*/templates"))]
LITERAL = re.compile(r"""_\(\s*(["'])([^"']+)\1\s*[,)]""")
DYNAMIC = re.compile(r"""_\(\s*(["'])([^"']+)\1\s*~\s*([^)]*)\)""")


def dynamic_keys() -> dict[str, set[str]]:
    """Every concatenated key prefix in the templates → the keys it can produce."""
    from core.models import UNIT_KINDS
    from core.plugins import CORE_SUBSCRIBERS, STAGES
    from core.registry import MENU_GROUPS
    from web.errors import KNOWN

    statuses = {str(s) for s in KNOWN}
    return {
        "error.": {f"error.{s}.{part}" for s in statuses for part in ("title", "text")},
        "plugins.source.": {f"plugins.source.{s}" for s in ("builtin", "entrypoint", "extra", "settings")},
        "plugins.status.": {f"plugins.status.{s}" for s in ("ok", "failed", "not_allowed", "blocked")},
        "plugins.stage.": {f"plugins.stage.{s}" for s in STAGES},
        "nav.group.": {f"nav.group.{g}" for g in MENU_GROUPS},
        "password.": {f"password.{f}" for f in ("current", "new", "confirm")},
        "activation.filter.": {f"activation.filter.{v}" for v in ("all", "off", "on", "own")},
        "unit.kind.": {f"unit.kind.{k}" for k in UNIT_KINDS},
        "calendar.kind.": {f"calendar.kind.{k}" for k in ("day_off", "make_up")},  # core.regimes.workdays.KINDS
        "calendar.weekday.": {f"calendar.weekday.{d}" for d in range(7)},
        "outbox.state.": {f"outbox.state.{s}" for s in ("pending", "sending", "sent", "failed", "cancelled")},
        "plugins.core_parts.": {f"plugins.core_parts.{name}" for name in CORE_SUBSCRIBERS},
        **_indicator_keys(),
        **_unit_history_keys(),
        **_form_designer_keys(),
        **_sector_keys(),
        **_national_link_keys(),
    }


def _sector_keys() -> dict[str, set[str]]:
    """plugins/chuyen_nganh names a delegation's states, steps, actions, scope kinds and decision
    fields by prefix (issue 15)."""
    from core.regimes.periods import FREQUENCIES
    from core.regimes.regimes import STATUSES as REGIME_STATUSES
    from plugins.chuyen_nganh import delegation, routes
    from plugins.chuyen_nganh.models import STATUSES

    states = (*STATUSES, "expired")
    steps = ("apply", "change", "decide", *routes.REASON_ACTIONS)
    fields = ("decision_number", "decision_date", "signer_name", "signer_title", "valid_from", "valid_to")
    return {
        "chuyen_nganh.status.": {f"chuyen_nganh.status.{s}" for s in states},
        "chuyen_nganh.state.": {f"chuyen_nganh.state.{s}" for s in states},
        "chuyen_nganh.kind.": {f"chuyen_nganh.kind.{k}" for k in delegation.SCOPE_KINDS},
        "chuyen_nganh.action.": {f"chuyen_nganh.action.{a}" for a in ("change", "decide", *routes.REASON_ACTIONS)},
        "chuyen_nganh.step.": {f"chuyen_nganh.step.{s}" for s in steps},
        "chuyen_nganh.done.": {f"chuyen_nganh.done.{s}" for s in steps},
        "chuyen_nganh.field.": {f"chuyen_nganh.field.{f}" for f in fields},
        # The shipped templates say their frequency; anything else reads "other" (shipped.html).
        "chuyen_nganh.shipped.frequency.": {f"chuyen_nganh.shipped.frequency.{f}" for f in (*FREQUENCIES, "other")},
        # The department's page badges a regime that is not in force by its status (department.html).
        "regimes.status.": {f"regimes.status.{s}" for s in REGIME_STATUSES},
        # The department's page: a column per count of a regime's period (department.html).
        "chuyen_nganh.department.col.": {f"chuyen_nganh.department.col.{c}" for c in
                                         ("expected", "on_time", "late", "not_submitted", "accepted", "returned")},
    }


def _national_link_keys() -> dict[str, set[str]]:
    """plugins/national_link names packet kinds, states, directions, decisions and connector kinds
    by prefix (issue 16)."""
    from plugins.national_link import proposals, routes
    from plugins.national_link.connectors import KINDS
    from plugins.national_link.models import PROPOSAL_STATES, REMOTE_STATUSES
    from plugins.national_link.packets import PACKET_TYPES

    def keys(prefix, values):
        return {f"national_link.{prefix}{v}" for v in values}

    return {
        "national_link.packets.type.": keys("packets.type.", (*PACKET_TYPES, "dhis2_values", "unreadable")),
        "national_link.state.": keys("state.", routes.STATES),
        "national_link.direction.": keys("direction.", routes.DIRECTIONS),
        "national_link.remote.": keys("remote.", [s for s in REMOTE_STATUSES if s]),
        "national_link.signature.": keys("signature.", ("valid", "invalid", "indeterminate", "none")),
        "national_link.exchange.done.": keys("exchange.done.", ("retry", "cancel", "deliver", "fetch", "fetch_failed", "catalogue", "catalogue_same")),
        "national_link.proposal.state.": keys("proposal.state.", PROPOSAL_STATES),
        "national_link.proposals.empty.": keys("proposals.empty.", PROPOSAL_STATES),
        "national_link.proposal.change.": keys("proposal.change.", ("new", "changed", "unchanged")),
        "national_link.proposal.field.": keys("proposal.field.", ("code", *proposals.REGIME_FIELDS)),
        "national_link.connectors.kind.": keys("connectors.kind.", KINDS),
    }


def _form_designer_keys() -> dict[str, set[str]]:
    """The form designer (issue 5) names tabs, kinds, periods and severities by prefix."""
    from core.regimes.form_engine import COLUMN_KINDS, PERIOD_OFFSETS, ROW_KINDS, SEVERITIES
    from core.catalogue.indicators import VALUE_KINDS
    from web.routes.forms import TABS

    parts = {"tab": TABS, "severity": SEVERITIES, "row_kind": ROW_KINDS, "column_kind": COLUMN_KINDS,
             "value_kind": VALUE_KINDS, "period": PERIOD_OFFSETS}
    return {f"form_designer.{name}.": {f"form_designer.{name}.{v}" for v in values} for name, values in parts.items()}


def _unit_history_keys() -> dict[str, set[str]]:
    """The unit history and import screens (issue 4) name change kinds and import actions by prefix."""
    from core.units.changes import CHANGE_KINDS
    screen_kinds = ("merge", "split", "rename", "reparent", "level_change", "dissolve")  # web.routes.unit_changes

    return {"units.history.kind.": {f"units.history.kind.{k}" for k in CHANGE_KINDS},
            "units.io.action.": {f"units.io.action.{a}" for a in ("create", "update", "unchanged")},
            # The unit change screen names its kinds and their explanations by prefix.
            "unitchange.kind.": {f"unitchange.kind.{k}" for k in screen_kinds},
            "unitchange.kind_help.": {f"unitchange.kind_help.{k}" for k in screen_kinds}}


def _indicator_keys() -> dict[str, set[str]]:
    """The indicator catalogue screens (issue 4) name levels, kinds, fields and columns by prefix."""
    from core.catalogue import indicators as ind

    fields = set(ind.VERSIONED_FIELDS) | {"code", "validity", "version"}
    columns = {"header", "stt", "file", *ind.FIELD_LABELS}
    return {"indicators.level.": {f"indicators.level.{lv}" for lv in ind.LEVELS},
            "indicators.aggregation.": {f"indicators.aggregation.{a}" for a in ind.AGGREGATIONS},
            "indicators.value_type.": {f"indicators.value_type.{t}" for t in ind.VALUE_TYPES},
            "indicators.value_kind.": {f"indicators.value_kind.{k}" for k in ind.VALUE_KINDS},
            "indicators.field.": {f"indicators.field.{f}" for f in fields},
            "indicators.column.": {f"indicators.column.{c}" for c in columns}}


def template_keys() -> tuple[set[str], set[str]]:
    literal, prefixes = set(), set()
    for directory in TEMPLATE_DIRS:
        for path in directory.rglob("*.html"):
            text = path.read_text(encoding="utf-8")
            literal |= {m.group(2) for m in LITERAL.finditer(text)}
            prefixes |= {m.group(2) for m in DYNAMIC.finditer(text)}
    return literal, prefixes


MESSAGE_CALLS = {"SettingsError", "PluginError", "StartupError", "BaocaoError", "NotFound", "Forbidden",
                 "ValidationError", "_t", "gettext", "translate", "ExpressionError", "CellInputError", "Problem"}


def _strings(node) -> list[str]:
    """String constants in a node, looking into dict, list and tuple literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Dict):
        return [s for v in node.values for s in _strings(v)]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [s for e in node.elts for s in _strings(e)]
    return []


def _name(func) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def python_keys(path: Path) -> set[str]:
    """Message keys a Python module hands to the catalogue."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in MESSAGE_CALLS:
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    found += _strings(arg)
            elif name in ("Permission", "MenuItem", "Widget") and len(node.args) > 1:
                found += _strings(node.args[1])
            elif name == "setdefault" and _name(getattr(node.func, "value", None)) == "errors":
                found += _strings(node.args[1])
            if name in ("Permission", "MenuItem", "Widget", "Domain"):
                found += [s for k in node.keywords if k.arg in ("label", "title", "description")
                          for s in _strings(k.value)]
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and _name(target.value) == "errors":
                    found += _strings(node.value)
                if isinstance(target, ast.Name) and target.id == "key":
                    found += _strings(node.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "errors":
                    found += _strings(value)
    return {s for s in found if KEY_RE.match(s)}


def code_keys() -> dict[str, set[str]]:
    files = sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "web").rglob("*.py")])
    return {str(p.relative_to(ROOT)): keys for p in files if (keys := python_keys(p))}


def test_the_key_scanners_find_keys():
    # Guards the tests below against passing on nothing found.
    literal, prefixes = template_keys()
    assert {"login.title", "nav.logout", "error.request_id"} <= literal
    assert "error." in prefixes
    keys = set().union(*code_keys().values())
    assert {"settings.error.unknown", "settings.error.database_url", "plugin.error.bad_name",
            "account.error.password_length", "account.error.current_password", "login.error.invalid",
            "cli.init.admin", "startup.error.argon2", "error.generic", "perm.core.plugin.admin",
            "nav.home"} <= keys


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_template_key_exists(lang):
    literal, _ = template_keys()
    messages = merged()[lang]  # once: building the catalogue per key took seconds
    missing = sorted(k for k in literal if KEY_RE.match(k) and k not in messages)
    assert missing == []


def test_every_dynamic_template_key_is_known_and_exists():
    _, prefixes = template_keys()
    known = dynamic_keys()
    assert sorted(prefixes - set(known)) == [], "a template builds keys from a new prefix: enumerate its values here"
    for lang in LANGUAGES:
        messages = merged()[lang]
        missing = sorted(k for p in prefixes for k in known[p] if k not in messages)
        assert missing == [], lang


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_used_in_python_exists(lang):
    messages = merged()[lang]
    missing = {f: sorted(k for k in keys if k not in messages) for f, keys in code_keys().items()}
    assert {f: k for f, k in missing.items() if k} == {}


def test_core_catalogue_is_what_the_app_loads():
    catalog = core_catalog()
    assert catalog.messages["vi"] == load_lang(CORE_LOCALE_DIR, "vi")
    assert catalog.messages["en"] == load_lang(CORE_LOCALE_DIR, "en")


def test_a_key_in_two_topic_files_is_refused(tmp_path):
    (tmp_path / "vi.json").write_text('{"a.b": "A"}', encoding="utf-8")
    (tmp_path / "vi.more.json").write_text('{"a.b": "B"}', encoding="utf-8")
    with pytest.raises(ValueError, match="a.b"):
        Catalog().add_dir(tmp_path)


# -- keys built from data: built-in roles, deadline rules -------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_builtin_role_is_named_in_both_languages(db_session, lang):
    """A built-in role is shown by its key ``role.<code>`` (``Role.label_key``): the screens showed the
    raw key "role.clerk" when a migration added a role without naming it."""
    from core.accounts.access import Role

    keys = [role.label_key for role in Role.select().where(Role.is_builtin == True)]  # noqa: E712
    assert "role.clerk" in keys
    assert sorted(k for k in keys if k not in merged()[lang]) == []


@pytest.mark.parametrize("rule, frequency, vi, en", [
    ("1wd", "monthly", "1 ngày làm việc sau ngày chốt số liệu", "1 working day after the cut-off date"),
    ("2wd", "quarterly", "2 ngày làm việc sau ngày chốt số liệu", "2 working days after the cut-off date"),
    ("+1wd", "monthly", "1 ngày làm việc sau thời hạn của cấp liền trước", "1 working day after the previous level's deadline"),
    ("day:25", "monthly", "ngày 25 hằng tháng", "day 25 of each month"),
    ("day:20", "quarterly", "ngày 20 của tháng cuối kỳ báo cáo", "day 20 of the period's last month"),
    ("xyz", "monthly", "xyz", "xyz"),  # unreadable: shown as typed, so the mistake stays visible
])
def test_deadline_rules_are_shown_in_plain_words(rule, frequency, vi, en):
    from core.regimes.regimes import describe_deadline_rule

    catalog = core_catalog()
    assert describe_deadline_rule(rule, lambda k, **p: catalog.gettext("vi", k, **p), frequency) == vi
    assert describe_deadline_rule(rule, lambda k, **p: catalog.gettext("en", k, **p), frequency) == en


def audit_detail_keys() -> set[str]:
    """The detail names the code records in audit events: keys of the dict given as ``details=``
    (directly or through a variable named ``details``), ``details["x"] = ...``, and what an
    ``audit_details()`` method returns."""
    found: set[str] = set()

    def keys_of(node) -> set[str]:
        return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)} \
            if isinstance(node, ast.Dict) else set()

    files = [*(ROOT / "core").rglob("*.py"), *(ROOT / "web").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                found |= {k for kw in node.keywords if kw.arg == "details" for k in keys_of(kw.value)}
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == "details":
                        found |= keys_of(node.value)
                    if isinstance(target, ast.Subscript) and _name(target.value) == "details" \
                            and isinstance(target.slice, ast.Constant):
                        found.add(target.slice.value)
            elif isinstance(node, ast.FunctionDef) and node.name == "audit_details":
                found |= {k for ret in ast.walk(node) if isinstance(ret, ast.Return) for k in keys_of(ret.value)}
    return found


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_audit_detail_is_named_in_both_languages(lang):
    """The audit list shows each event's details as "name: value" in the reader's language, never
    the English keys the code records ("sessions_ended: 2")."""
    keys = audit_detail_keys()
    assert {"sessions_ended", "reason", "signer_serial", "version"} <= keys  # the scanner finds them
    messages = merged()[lang]
    assert sorted(k for k in keys if f"audit.detail.{k}" not in messages) == []
    assert {"audit.value.yes", "audit.value.no"} <= set(messages)


def test_an_audit_events_details_read_as_words_in_each_language():
    from types import SimpleNamespace

    from web.routes.audit import Labels, _details_text

    event = SimpleNamespace(details=json.dumps({"sessions_ended": 2, "late": False, "roles": ["viewer", "clerk"]}))
    assert _details_text(event, Labels(core_catalog(), "vi")) == \
        "nộp muộn: không · các vai trò: viewer, clerk · số phiên đăng nhập đã kết thúc: 2"
    assert _details_text(event, Labels(core_catalog(), "en")) == "late: no · roles: viewer, clerk · sessions ended: 2"
