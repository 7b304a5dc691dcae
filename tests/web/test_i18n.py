"""Language on the screens: negotiation, the switch, the user's preference; and
autoescaping of everything a user can type."""

from __future__ import annotations

import re

import pytest

from tests.conftest import HX, csrf_from

XSS = "<script>alert(1)</script>"


def switch(client, lang, next_url="/", headers=None):
    token = csrf_from(client.get("/login").text)
    return client.post("/lang", data={"lang": lang, "next": next_url, "csrf_token": token}, headers=headers,
                       follow_redirects=False)


def test_accept_language_en_gives_the_english_login_page(client):
    page = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in page.text
    assert "Log in" in page.text or "Sign in" in page.text
    assert "Đăng nhập" not in page.text


def test_vietnamese_is_chosen_over_unsupported_languages(client):
    page = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,vi;q=0.8,en;q=0.7"})
    assert '<html lang="vi">' in page.text and "Đăng nhập" in page.text


def test_the_switch_sets_a_cookie_for_an_anonymous_visitor(client):
    response = switch(client, "en", "/login?next=/admin/plugins")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin/plugins"
    cookie = [h for h in response.headers.get_list("set-cookie") if h.startswith("baocao_lang=")]
    assert cookie and cookie[0].startswith("baocao_lang=en;")
    assert "Max-Age=" in cookie[0] and "SameSite=Lax" in cookie[0]
    page = client.get("/login")
    assert '<html lang="en">' in page.text
    # The cookie wins over the browser's preference.
    assert '<html lang="en">' in client.get("/login", headers={"Accept-Language": "vi"}).text


def test_an_unknown_language_changes_nothing(client):
    switch(client, "fr")
    assert '<html lang="vi">' in client.get("/login").text


def test_the_switch_does_not_redirect_elsewhere(client):
    response = switch(client, "en", "https://evil.example/")
    assert response.headers["location"] == "/"


def test_the_switch_stores_the_preference_of_a_logged_in_user(client, login):
    from core.db import db
    from core.models import User

    user = login()
    page = client.get("/")
    assert '<html lang="vi">' in page.text
    response = client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf_from(page.text)},
                           follow_redirects=False)
    assert response.status_code == 303
    with db.connection_context():
        assert User.get_by_id(user.id).language == "en"
    # Without the cookie (another browser, say) the account's preference still decides,
    # and it wins over the browser's Accept-Language.
    client.cookies.delete("baocao_lang")
    assert "baocao_lang" not in client.cookies
    home = client.get("/", headers={"Accept-Language": "vi"})
    assert '<html lang="en">' in home.text
    assert "Xin chào" not in home.text and "Log out" in home.text


def test_the_users_preference_applies_at_the_next_login(client, make_user):
    from core.accounts import login as accounts
    from core.db import db

    user, password = make_user()
    with db.connection_context():
        accounts.set_language(user, "en")
    page = client.get("/login")
    client.post("/login", data={"username": user.username, "password": password, "csrf_token": csrf_from(page.text)})
    assert '<html lang="en">' in client.get("/").text


def test_english_error_and_form_messages(client, make_user):
    user, password = make_user()
    page = client.get("/login", headers={"Accept-Language": "en"})
    response = client.post("/login", headers={"Accept-Language": "en"}, data={
        "username": user.username, "password": "wrong password", "csrf_token": csrf_from(page.text)})
    assert response.status_code == 422
    assert "không đúng" not in response.text
    assert re.search(r'id="login-error">[A-Z][^<]+<', response.text)


# -- autoescaping -----------------------------------------------------------------------------------

@pytest.fixture
def hostile_admin(client, make_user):
    """An administrator whose name and unit are script tags, logged in."""
    from core.db import db
    from core.models import Unit, User

    user, password = make_user(unit_code="XSS", unit_name=XSS, is_admin=True)
    with db.connection_context():
        User.update(full_name=XSS).where(User.id == user.id).execute()
    page = client.get("/login")
    response = client.post("/login", data={"username": user.username, "password": password,
                                           "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert response.status_code == 303
    return user


@pytest.mark.parametrize("path, headers", [
    ("/", None), ("/account/password", None), ("/account/password", HX), ("/admin/plugins", None),
    ("/admin/plugins/kinhte_xahoi", None), ("/admin/plugins/kinhte_xahoi", HX), ("/nope", None),
])
def test_user_text_is_escaped_on_every_page(client, hostile_admin, path, headers):
    response = client.get(path, headers=headers)
    assert response.status_code in (200, 404)
    assert XSS not in response.text
    assert "<script>alert" not in response.text
    if headers is None:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text  # shown, as text


def test_text_typed_into_a_form_is_escaped_when_shown_again(client):
    page = client.get("/login")
    response = client.post("/login", data={"username": '"><script>alert(1)</script>', "password": "x" * 8,
                                           "csrf_token": csrf_from(page.text)})
    assert response.status_code == 422
    assert "<script>alert(1)" not in response.text
    assert "&#34;&gt;&lt;script&gt;" in response.text or "&quot;&gt;&lt;script&gt;" in response.text


def test_the_template_environment_autoescapes_every_file_name(app):
    env = app.state.templates.env
    assert env.autoescape is True
    rendered = env.from_string("{{ x }}").render(x=XSS)
    assert rendered == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_templates_never_mark_data_safe():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for d in [root / "web" / "templates", *root.glob("plugins/*/templates")]
                 for p in d.rglob("*") if p.is_file() and re.search(r"\|\s*safe\b|Markup\(|autoescape\s+false",
                                                                       p.read_text(encoding="utf-8"))]
    assert offenders == []
