"""The vendored htmx: pinned by hash, its licence beside it, served from our own origin."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from web import assets
from web.app import STATIC_DIR

HTMX_PATH = STATIC_DIR / assets.HTMX_FILE


def test_htmx_file_matches_its_pinned_sha256():
    assert hashlib.sha256(HTMX_PATH.read_bytes()).hexdigest() == assets.HTMX_SHA256


def test_htmx_is_a_2_0_release_and_the_names_agree():
    assert re.fullmatch(r"2\.0\.\d+", assets.HTMX_VERSION)
    assert Path(assets.HTMX_FILE).name == f"htmx-{assets.HTMX_VERSION}.min.js"
    # The file itself says which version it is.
    declared = re.search(rb'version:"([^"]+)"', HTMX_PATH.read_bytes())
    assert declared and declared.group(1).decode() == assets.HTMX_VERSION


def test_the_licence_sits_next_to_htmx():
    licence = HTMX_PATH.with_name("htmx.LICENSE")
    assert licence.is_file()
    assert "BSD" in licence.read_text(encoding="utf-8")


def test_only_one_htmx_is_vendored():
    # An upgrade removes the old file, so no page can load a stale copy.
    assert sorted(p.name for p in HTMX_PATH.parent.glob("htmx*.js")) == [HTMX_PATH.name]


def _script_srcs(html: str) -> list[str]:
    return re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)


def test_pages_reference_exactly_the_pinned_file(client, login):
    expected = f"/static/{assets.HTMX_FILE}"
    login_page = client.get("/login").text
    login()
    base_page = client.get("/").text
    for html in (login_page, base_page):
        # The URL carries a content fingerprint (?v=…) so browsers may cache it long.
        htmx = [s.split("?v=")[0] for s in _script_srcs(html) if "htmx" in s]
        assert htmx == [expected]
        # Same origin only: nothing from a CDN.
        assert all(s.startswith("/static/") for s in _script_srcs(html))
        # No inline script: the CSP has no 'unsafe-inline'.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_the_static_mount_serves_htmx(client):
    response = client.get(f"/static/{assets.HTMX_FILE}")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == assets.HTMX_SHA256
    assert "javascript" in response.headers["content-type"]


def test_static_urls_carry_a_content_fingerprint_and_may_be_cached(client):
    """On a slow line a page must not revalidate every file: the URL changes with the
    content, so the file itself may be cached for a week."""
    page = client.get("/login").text
    css = re.search(r'href="(/static/core/app\.css\?v=([0-9a-f]{12}))"', page)
    assert css, "the stylesheet link has no fingerprint"
    digest = hashlib.sha256((STATIC_DIR / "core" / "app.css").read_bytes()).hexdigest()
    assert css.group(2) == digest[:12]
    response = client.get(css.group(1))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=604800"


def test_development_mode_does_not_cache_static_files(make_app, settings):
    from dataclasses import replace

    from starlette.testclient import TestClient

    with TestClient(make_app(replace(settings, mode="development"))) as client:
        response = client.get("/static/core/app.css")
    assert response.status_code == 200 and "max-age" not in response.headers.get("cache-control", "")
