"""Who sees which reports under a regime at ``/regimes/{id}/reports`` (issue 12, item 11).

A commune sees its own report, a receiving unit those it receives, the regime's drafters and
issuers every one; someone who may read the regime but neither sends nor receives its reports
sees none of them (security.md ACL-02). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

from tests.conftest import csrf_from
from tests.web.test_regime_screens import _units, create, grant

SENDERS = ("Sở Tài chính", "Sở Y tế", "Xã Ái Tử", "Xã Cam Lộ")


def _log_in(client, user, password) -> None:
    client.cookies.clear()
    page = client.get("/login")
    answer = client.post("/login", data={"username": user.username, "password": password,
                                         "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert answer.status_code == 303


def _listed(client, regime_id) -> set[str]:
    """The sending units of the report rows shown; the unit filter offers no other."""
    page = client.get(f"/regimes/{regime_id}/reports")
    assert page.status_code == 200
    rows = {name for name in re.findall(r'<td data-label="[^"]*">([^<]+)</td>', page.text) if name in SENDERS}
    offered = {name for name in re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', page.text)
               if name in SENDERS}
    assert offered <= rows
    return rows


def test_each_unit_sees_only_the_reports_it_sends_or_receives_and_the_drafters_see_all(client, make_user):
    admin, admin_pw = make_user(is_admin=True)
    _log_in(client, admin, admin_pw)
    units = _units()
    token = csrf_from(client.get("/regimes").text)
    regime_id = create(client, units, token)  # receiving unit: the province (ROOT); drafted by Sở Tài chính
    assert client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    assert _listed(client, regime_id) == set(SENDERS)

    people = {}
    for name, role, unit in (("xa", "reporter", "AT"), ("tiepnhan", "receiver", "ROOT"),
                             ("soanthao", "regime_editor", "STC"), ("syt_nhan", "receiver", "SYT"),
                             ("xem", "viewer", "CL")):
        user, password = make_user(f"u_{name}", unit_code=unit)
        grant(user, role, unit)
        people[name] = (user, password)

    _log_in(client, *people["xa"])
    assert _listed(client, regime_id) == {"Xã Ái Tử"}
    page = client.get(f"/regimes/{regime_id}/reports")
    assert "1 báo cáo" in page.text
    # The regime's own page counts the period's reports the same way: the commune's one, not four.
    detail = client.get(f"/regimes/{regime_id}").text
    assert "· 1 báo cáo" in detail and "· 4 báo cáo" not in detail
    _log_in(client, *people["tiepnhan"])
    assert _listed(client, regime_id) == set(SENDERS)
    assert "· 4 báo cáo" in client.get(f"/regimes/{regime_id}").text
    _log_in(client, *people["soanthao"])
    assert _listed(client, regime_id) == set(SENDERS)
    # A receiver elsewhere and a mere viewer read the regime but none of its reports.
    for who in ("syt_nhan", "xem"):
        _log_in(client, *people[who])
        assert _listed(client, regime_id) == set(), who
