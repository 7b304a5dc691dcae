from tests.conftest import HX, csrf_from


def test_login_shows_the_shell_in_vietnamese(client, login):
    login("quantri", is_admin=True)
    page = client.get("/")
    assert page.status_code == 200
    assert "Xin chào" in page.text and "Đăng xuất" in page.text
    assert 'href="/admin/plugins"' in page.text


def test_plugins_page_lists_builtins(client, login):
    login("quantri", is_admin=True)
    page = client.get("/admin/plugins")
    assert page.status_code == 200, page.text
    for name in ("kinhte_xahoi", "chuyen_nganh", "national_link"):
        assert f'id="plugin-{name}"' in page.text
