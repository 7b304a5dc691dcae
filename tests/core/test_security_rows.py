"""Checklist rows that had no test of their own (docs/security_checklist.md): CRY-01 no code turns
certificate verification off, WEB-02 no template marks text as safe, WEB-04 no secret in a URL,
VN-03/VN-04 the dependency audit and inventory of .ci/audit."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
from importlib.machinery import SourceFileLoader
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import csrf_from

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "core", ROOT / "web", ROOT / "plugins"]

# What turns TLS certificate checking off in the standard library, httpx, requests and urllib3.
UNVERIFIED_TLS = re.compile(r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context"
                            r"|cert_reqs\s*=\s*['\"]?(CERT_)?NONE")


def shipped_files(pattern: str) -> list[Path]:
    return sorted(p for folder in SHIPPED for p in folder.rglob(pattern) if "__pycache__" not in p.parts)


def test_cry01_no_shipped_code_turns_certificate_verification_off():
    sources = shipped_files("*.py")
    assert len(sources) > 100  # the walk really reads the code
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in sources
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
             if UNVERIFIED_TLS.search(line)]
    assert found == []


def test_web02_no_template_marks_text_as_safe():
    """Autoescaping is on for every template (tests/web/test_i18n.py); `|safe` would switch it off for
    one value, and a value that reaches a template may be a person's text."""
    templates = shipped_files("*.html")
    assert len(templates) > 50
    found = [f"{p.relative_to(ROOT)}:{n}" for p in templates
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
             if re.search(r"\|\s*safe\b", line)]
    assert found == []


URL_ATTRIBUTE = re.compile(r'\b(?:href|src|action|hx-get|hx-post|hx-put|hx-delete|hx-patch|formaction)="([^"]*)"')


def test_web04_neither_the_session_id_nor_the_csrf_token_reaches_a_url(client, make_user):
    """Every URL on the pages a logged-in person reaches from the home page (links, forms, htmx
    targets, redirects), and the login form itself, carry no session id, CSRF token or password."""
    user, password = make_user(roles=("reporter", "receiver"))
    login_page = client.get("/login").text
    assert re.search(r'<form[^>]*method="post"', login_page, re.I)  # the password travels in the body
    answer = client.post("/login", data={"username": user.username, "password": password,
                                         "csrf_token": csrf_from(login_page)}, follow_redirects=False)
    assert answer.status_code == 303
    secrets = {"session": client.cookies.get("baocao_session"), "password": password}
    assert all(secrets.values())
    seen, queue, urls = set(), ["/"], [answer.headers["location"]]
    while queue and len(seen) < 15:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        page = client.get(path, follow_redirects=False)
        urls.append(page.headers.get("location", ""))
        if page.status_code != 200 or not page.headers.get("content-type", "").startswith("text/html"):
            continue
        token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)  # full pages carry it
        if token:
            secrets[f"csrf on {path}"] = token.group(1)
        for url in map(unescape, URL_ATTRIBUTE.findall(page.text)):
            urls.append(url)
            parts = urlsplit(url)
            if not parts.netloc and parts.path.startswith("/") and not parts.path.startswith(("/static", "/logout")):
                queue.append(parts.path)
    assert len(seen) >= 5 and len(urls) > 50 and len(secrets) > 3  # the walk really went somewhere
    leaks = [(name, url) for url in urls for name, value in secrets.items() if value and value in url]
    assert leaks == []


# -- VN-03, VN-04: the dependency audit and inventory (.ci/audit) ----------------------------------------

def load_audit():
    """.ci/audit is a script without a .py suffix: load it as a module to test what it compares."""
    loader = SourceFileLoader("ci_audit", str(ROOT / ".ci" / "audit"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("ci_audit", loader))
    loader.exec_module(module)
    return module


def advisory(**affected) -> dict:
    return {"id": "PYSEC-0000-1", "affected": [{"package": {"name": "Some_Package", "ecosystem": "PyPI"}, **affected}]}


def test_vn03_the_audit_reads_osv_ranges_and_version_lists():
    audit = load_audit()
    ranged = advisory(ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.5"},
                                                                {"introduced": "2.0"}, {"last_affected": "2.1"}]}])
    verdicts = {v: audit.matches("some-package", v, ranged) for v in ("0.9", "1.5", "1.9", "2.0", "2.1", "2.1.1")}
    assert verdicts == {"0.9": ["1.5"], "1.5": None, "1.9": None, "2.0": [], "2.1": [], "2.1.1": None}
    listed = advisory(versions=["3.0", "3.0.1"])
    assert audit.matches("some-package", "3.0.1", listed) == [] and audit.matches("some-package", "3.0.2", listed) is None
    assert audit.matches("other", "0.9", ranged) is None  # another package's advisory
    assert audit.matches("some-package", "0.9", {**ranged, "withdrawn": "2024-01-01T00:00:00Z"}) is None
    git_only = advisory(ranges=[{"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}])
    assert audit.matches("some-package", "0.9", git_only) is None  # commits are not versions


def test_vn03_the_snapshot_is_dated_and_holds_installed_packages_only():
    audit = load_audit()
    info = audit.snapshot_info()
    assert re.fullmatch(r"[0-9a-f]{40}", info["commit"]) and re.match(r"\d{4}-\d\d-\d\d", info["date"])
    folders = {p.name for p in audit.ADVISORIES.iterdir() if p.is_dir()}
    installed = audit.installed()
    assert "cryptography" in folders and folders <= set(installed)


def test_vn04_the_inventory_names_every_installed_distribution_with_its_version(tmp_path):
    audit = load_audit()
    audit.write_inventory(str(tmp_path / "inventory.json"))
    components = {c["name"]: c for c in json.loads((tmp_path / "inventory.json").read_text())["components"]}
    for name in ("starlette", "peewee", "cryptography", "jinja2"):
        assert components[name]["version"] == importlib.metadata.version(name)
        assert components[name]["purl"] == f"pkg:pypi/{name}@{importlib.metadata.version(name)}"
    assert components["starlette"]["license"] != "UNKNOWN"


# -- VN-03, IN-02: the secret scan (.ci/secrets) and SAST (bandit, run by .ci/audit) ---------------------------

def load_secrets():
    """.ci/secrets, like .ci/audit, is a script without a .py suffix; registered while it loads, as its
    dataclasses look their module up."""
    import sys

    loader = SourceFileLoader("ci_secrets", str(ROOT / ".ci" / "secrets"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("ci_secrets", loader))
    sys.modules["ci_secrets"] = module
    try:
        loader.exec_module(module)
    finally:
        del sys.modules["ci_secrets"]
    return module


# Put together at run time, so that this file holds no key for the scan to find.
PLANTED_KEY = "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END " + "PRIVATE KEY-----\n"


def test_vn03_the_secret_scan_finds_a_planted_key_and_passes_an_allowlisted_fixture(tmp_path, capsys):
    import subprocess

    secrets = load_secrets()
    repo = tmp_path / "repo"
    (repo / "core").mkdir(parents=True)
    (repo / "tests" / "pki").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "core" / "settings.py").write_text(f'SIGNING_KEY = """{PLANTED_KEY}"""\n', encoding="utf-8")
    (repo / "tests" / "pki" / "signer.pem").write_text(PLANTED_KEY, encoding="utf-8")
    (repo / "sample.toml").write_text('smtp_password = "Kh0ng-d0an-duoc"\nbackup = { "$env" = "X" }\n',
                                      encoding="utf-8")
    allow = tmp_path / "allow"
    allow.write_text("# fixtures\ntests/pki/signer.pem  private-key  the test PKI's throw-away signer key\n",
                     encoding="utf-8")

    assert secrets.main(["--root", str(repo), "--allow", str(allow)]) == 1
    printed = capsys.readouterr().out
    assert "core/settings.py:1: private-key" in printed and "sample.toml:1: password-literal" in printed
    assert "signer.pem" not in printed and "1 allowlisted" in printed  # the fixture passes
    assert "MIIEvQ" not in printed and "Kh0ng-d0an" not in printed  # the CI log never shows a secret whole

    (repo / "core" / "settings.py").write_text('SIGNING_KEY = os.environ["BAOCAO_SIGNING_KEY"]\n', encoding="utf-8")
    (repo / "sample.toml").write_text('smtp_password = { "$env" = "SMTP_PASSWORD" }\n', encoding="utf-8")
    assert secrets.main(["--root", str(repo), "--allow", str(allow)]) == 0
    allow.write_text("tests/pki/signer.pem private-key\n", encoding="utf-8")  # no reason: refused
    assert secrets.main(["--root", str(repo), "--allow", str(allow)]) == 2


def test_vn03_the_checkout_holds_no_secret_the_allowlist_does_not_explain(capsys):
    assert load_secrets().main([]) == 0, capsys.readouterr().out


def test_vn03_bandit_is_configured_to_fail_on_medium_severity_over_the_shipped_code():
    import tomllib

    config = load_audit().bandit_config()
    assert config["severity"] == "medium" and config["confidence"] == "low"
    assert config["targets"] == ["core", "web", "plugins"] and config["skips"] == []  # no rule switched off
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert any(re.match(r"bandit\b", spec) for spec in extras["test"])
    assert importlib.metadata.version("bandit")


def test_in02_bandit_flags_formatted_sql_at_the_configured_threshold(tmp_path):
    import subprocess
    import sys

    config = load_audit().bandit_config()
    (tmp_path / "query.py").write_text('def find(db, name):\n'
                                       '    return db.execute_sql(f"SELECT id FROM core_unit WHERE code = \'{name}\'")\n',
                                       encoding="utf-8")
    run = subprocess.run([str(Path(sys.executable).parent / "bandit"), "-q", "-f", "txt", "--severity-level",
                          config["severity"], str(tmp_path / "query.py")], capture_output=True, text=True)
    assert run.returncode == 1 and "B608" in run.stdout


def test_vn03_every_nosec_mark_in_shipped_code_names_its_rule():
    """A bare `# nosec` would silence every rule on its line: each mark names the bandit test it answers."""
    marks = [(path, number, line) for path in shipped_files("*.py")
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if "nosec" in line]
    assert marks, "no nosec mark found: the search is broken"
    bare = [f"{path.relative_to(ROOT)}:{number}" for path, number, line in marks if not re.search(r"nosec B\d{3}", line)]
    assert bare == []


def test_vn01_the_level_document_maps_tcvn_level3_lines_to_rows_of_the_checklist():
    """docs/security_level.md's matrix names only TCVN 14423 section-5 clauses and checklist rows that
    exist, and covers the level-3 lines the secure-development and password rows cite."""
    level = (ROOT / "docs" / "security_level.md").read_text(encoding="utf-8")
    checklist = (ROOT / "docs" / "security_checklist.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| ([A-Z]+-\d\d) \|", checklist, flags=re.M))
    matrix = [line for line in level.splitlines() if re.match(r"^\| 5\.\d", line)]
    assert len(matrix) >= 10
    named = {row for line in matrix for row in re.findall(r"\b[A-Z]{2,5}-\d\d\b", line)}
    assert named and named <= rows, sorted(named - rows)
    clauses = {line.split("|")[1].strip() for line in matrix}
    assert {"5.6.2.2 b", "5.17.2.1–5.17.2.4", "5.18"} <= clauses
    assert 0 < level.index("## 1. Tiếng Việt") < level.index("## 2. English")  # Vietnamese first


def test_auth11_the_rotation_decision_is_recorded_and_its_compensating_controls_hold():
    """docs/security_level.md records no forced rotation (ASVS 6.2.10) against TCVN 5.6.2.2 b, in both
    languages, resting on controls that must stay the defaults for the record to stay true."""
    from core.settings import Settings

    level = (ROOT / "docs" / "security_level.md").read_text(encoding="utf-8")
    vietnamese, english = level.split("## 2. English")
    for part in (vietnamese, english):
        assert "5.6.2.2 b" in part and "6.2.10" in part and "`require_admin_mfa`" in part
        assert "core_password_history" in part and "admin_password_max_age_days" in part  # if the board insists
    defaults = Settings()
    assert defaults.require_admin_mfa is True  # MFA for administrators (AUTH-08)
    assert defaults.admin_session_idle_minutes <= 5 and defaults.lockout_threshold <= 5  # SESS-04, AUTH-06
    assert defaults.inactive_days <= 45  # AUTH-10
