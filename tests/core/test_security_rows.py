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
