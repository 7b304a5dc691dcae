"""Every action that changes a credential needs a recent login or re-authentication (issue 12, item 8).

security.md SESS-06. An administrator logged in long ago (``reauth_at`` older than the
window) posts each action with a valid CSRF token: each answers with the confirm page
(a 303 to ``/account/confirm``) and changes nothing. After confirming, the action works.
Runs on SQLite and, with ``BAOCAO_TEST_DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from core.accounts import login as accounts
from core.accounts import api_tokens
from core.signatures import certificates
from core.accounts import mfa
from core.accounts.access import Grant, Role
from core.audit import AuditEvent
from core.db import db
from core.models import Unit, User, utcnow
from tests.conftest import csrf_from
from tests.web.test_auth_flow import login_form
from tests.web.test_mfa_flow import STEP, age_reauth, code_at, enroll, verify


@pytest.fixture
def world(make_app):
    app = make_app()
    with TestClient(app) as client:
        with db.connection_context():
            province = Unit.create(code="44", name="Tỉnh Quảng Trị", kind="province")
            passwords = {name: accounts.random_password() for name in ("qt_hethong", "nv_mot")}
            admin = accounts.create_user("qt_hethong", "Quản trị hệ thống", passwords["qt_hethong"], province,
                                         is_admin=True)
            member = accounts.create_user("nv_mot", "Nhân viên Một", passwords["nv_mot"], province)
            viewer = Role.get(Role.code == "viewer")
            grant = Grant.create(user=member, role=viewer, unit=province)
            # Credentials the actions below would change: the member's 2FA, the admin's own 2FA,
            # a certificate each (rows only: the guard answers before the certificate is read).
            cert = {"der": b"0", "fingerprint": "0" * 64, "subject": "CN=x", "name": "x", "serial": "01",
                    "issuer": "CN=CA", "not_before": utcnow(), "not_after": utcnow() + dt.timedelta(days=1)}
            own_cert = certificates.UserCertificate.create(user=admin, **cert)
            member_cert = certificates.UserCertificate.create(user=member, **cert)
        enroll(member)
        enroll_admin = enroll(admin)
        # Log the administrator in (password, then the code of the next step), then age the login.
        assert login_form(client, admin.username, passwords["qt_hethong"]).status_code == 303
        secret = enroll_admin[0]
        assert verify(client, code_at(secret, utcnow())).status_code == 303
        yield SimpleNamespace(app=app, client=client, province=province, admin=admin, member=member, grant=grant,
                              passwords=passwords, own_cert=own_cert, member_cert=member_cert, secret=secret,
                              code_at=code_at, step=STEP)


def _actions(w) -> dict[str, tuple[str, dict]]:
    new = "Một câu mật khẩu mới rất dài 2026"
    return {
        "reset_password": (f"/users/{w.member.id}/reset-password", {}),
        "change_own_password": ("/account/password", {"current": w.passwords["qt_hethong"], "new": new,
                                                      "confirm": new}),
        "disable_own_2fa": ("/account/2fa/disable", {}),
        "reset_member_2fa": (f"/users/{w.member.id}/mfa/reset", {}),
        "grant_admin_role": (f"/users/{w.member.id}/grants", {"role": "unit_admin", "unit": str(w.province.id)}),
        "revoke_role": (f"/users/{w.member.id}/grants/{w.grant.id}/revoke", {}),
        "create_account": ("/users/new", {"username": "nv_moi", "full_name": "Nhân viên Mới",
                                          "unit": str(w.province.id), "roles": "viewer"}),
        "issue_api_token": ("/account/tokens", {"name": "Máy chủ thống kê", "days": "30", "can_write": "1"}),
        "register_certificate": ("/account/certificates", {}),
        "stop_own_certificate": (f"/account/certificates/{w.own_cert.id}/deactivate", {}),
        "stop_member_certificate": (f"/users/{w.member.id}/certificates/{w.member_cert.id}/deactivate", {}),
        "install_seal": (f"/units/{w.province.id}/seal/install", {"password": "matkhau"}),
        "retire_seal": (f"/units/{w.province.id}/seal/retire", {}),
    }


ACTIONS = ("reset_password", "change_own_password", "disable_own_2fa", "reset_member_2fa", "grant_admin_role",
           "revoke_role", "create_account", "issue_api_token", "register_certificate", "stop_own_certificate",
           "stop_member_certificate", "install_seal", "retire_seal")


def _state(w) -> dict:
    """Everything a credential action could change."""
    with db.connection_context():
        admin, member = User.get_by_id(w.admin.id), User.get_by_id(w.member.id)
        return {
            "hashes": (admin.password_hash, member.password_hash),
            "mfa": (mfa.is_enrolled(admin), mfa.is_enrolled(member)),
            "grants": sorted((g.role_id, g.unit_id) for g in Grant.select().where(Grant.user == w.member.id)),
            "users": User.select().count(),
            "tokens": api_tokens.ApiToken.select().count(),
            "certificates": sorted((c.id, c.active) for c in certificates.UserCertificate.select()),
            "audit": AuditEvent.select().where(~AuditEvent.action.startswith("auth.")).count(),
        }


@pytest.mark.parametrize("action", ACTIONS)
def test_sess06_a_credential_action_from_an_old_login_goes_to_the_confirm_page_and_changes_nothing(world, action):
    path, data = _actions(world)[action]
    page = world.client.get("/account/sessions")
    age_reauth(world.client)
    before = _state(world)
    files = {"p12": ("con-dau.p12", b"not a p12", "application/x-pkcs12")} if action == "install_seal" else \
        {"certificate": ("cert.cer", b"not a certificate", "application/pkix-cert")} \
        if action == "register_certificate" else None
    sent = world.client.post(path, data={**data, "csrf_token": csrf_from(page.text)}, files=files,
                             headers={"Referer": "http://testserver/account/sessions"}, follow_redirects=False)
    assert sent.status_code == 303, (action, sent.status_code, sent.text[:300])
    assert sent.headers["location"] == "/account/confirm?next=/account/sessions"
    assert "temp" not in sent.text and not re.search(r'<dd class="mono"><strong>', sent.text)
    assert _state(world) == before


def test_sess06_after_confirming_the_administrator_resets_the_password(world):
    path = f"/users/{world.member.id}"
    age_reauth(world.client)
    refused = world.client.post(f"{path}/reset-password",
                                data={"csrf_token": csrf_from(world.client.get(path).text)},
                                headers={"Referer": f"http://testserver{path}"}, follow_redirects=False)
    assert refused.headers["location"] == f"/account/confirm?next={path}"
    page = world.client.get(refused.headers["location"])
    code = world.code_at(world.secret, utcnow() + world.step)  # the login's code is spent
    done = world.client.post("/account/confirm", data={"password": world.passwords["qt_hethong"], "code": code,
                                                       "next": path, "csrf_token": csrf_from(page.text)},
                             follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == path
    reset = world.client.post(f"{path}/reset-password", data={"csrf_token": csrf_from(world.client.get(path).text)},
                              follow_redirects=False)
    assert reset.status_code == 200
    assert re.search(r'<dd class="mono"><strong>([^<]+)</strong></dd>', reset.text)
    with db.connection_context():
        assert User.get_by_id(world.member.id).must_change_password
