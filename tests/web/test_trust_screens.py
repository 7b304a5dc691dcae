"""The trust administration screen and "my certificates": what an administrator and a clerk see and do."""

from __future__ import annotations

import datetime as dt

import pytest

from core.db import db
from tests.conftest import csrf_from
from tests.fixtures.pki import DAY, NOW, der, pem, pki


def _cert_and_key(issued):
    return issued.certificate, issued.key


def post(client, path, page_path, data=None, files=None):
    token = csrf_from(client.get(page_path).text)
    return client.post(path, data={**(data or {}), "csrf_token": token}, files=files, follow_redirects=False)


def cer(issued_or_cert, name="chung-thu.cer"):
    cert = getattr(issued_or_cert, "certificate", issued_or_cert)
    return {"certificate": (name, der(cert), "application/pkix-cert")}


def p12(p, issued, password="matkhau"):
    """The form fields of registering with a .p12 file used once."""
    return {"way": "p12", "password": password}, {"p12": ("chu-ky.p12", p.pkcs12(issued, password),
                                                          "application/x-pkcs12")}


@pytest.fixture
def admin(login):
    return login(is_admin=True)


def test_admin_adds_anchors_uploads_a_crl_and_sees_its_state(client, admin):
    p = pki()
    page = client.get("/admin/trust")
    assert page.status_code == 200
    assert "Chứng thực chữ ký số" in page.text and "Chưa có tổ chức chứng thực nào" in page.text

    added = post(client, "/admin/trust/anchors", "/admin/trust", {"name": "CA gốc quốc gia"},
                 {"certificate": ("root.pem", pem(p.root.certificate), "application/x-pem-file")})
    assert added.status_code == 303 and added.headers["location"] == "/admin/trust?done=anchor_added"
    post(client, "/admin/trust/anchors", "/admin/trust", files=cer(p.intermediate))
    page = client.get("/admin/trust?done=anchor_added")
    assert "Đã thêm tổ chức chứng thực" in page.text
    assert "CA gốc quốc gia" in page.text and "CA thử nghiệm cấp dưới" in page.text
    assert page.text.count("Chưa có</span>") == 2  # no CRL yet for either

    uploaded = post(client, "/admin/trust/crls", "/admin/trust",
                    files={"crl": ("ca.crl", der(p.crl()), "application/pkix-crl")})
    assert uploaded.status_code == 303
    stale = post(client, "/admin/trust/crls", "/admin/trust",
                 files={"crl": ("root.crl", der(p.crl(issuer=p.root, this_update=NOW - 9 * DAY,
                                                      next_update=NOW - 2 * DAY)), "application/pkix-crl")})
    assert stale.status_code == 303
    page = client.get("/admin/trust")
    assert "Còn hiệu lực" in page.text and "Đã cũ" in page.text
    # The intermediate's distribution point became a source.
    assert "http://crl.thu-nghiem.invalid/ca-goc.crl" in page.text


def test_admin_refusals_answer_422_with_the_reason(client, admin):
    p = pki()
    refused = post(client, "/admin/trust/anchors", "/admin/trust", files=cer(p.signer()))
    assert refused.status_code == 422
    assert "không phải của một tổ chức chứng thực (CA)" in refused.text
    refused = post(client, "/admin/trust/crls", "/admin/trust",
                   files={"crl": ("x.crl", der(p.crl()), "application/pkix-crl")})
    assert refused.status_code == 422 and "không do một tổ chức chứng thực trong danh sách tin cậy ký" in refused.text
    refused = post(client, "/admin/trust/sources", "/admin/trust", {"url": "file:///etc/passwd"})
    assert refused.status_code == 422 and "http:// hoặc https://" in refused.text
    refused = post(client, "/admin/trust/anchors", "/admin/trust", files={"certificate": ("x.cer", b"xyz", "x/y")})
    assert refused.status_code == 422 and "không phải là chứng thư số" in refused.text


def test_admin_deactivates_an_anchor_and_manages_sources(client, admin):
    from core.signatures.trust import CrlSource, TrustAnchor

    post(client, "/admin/trust/anchors", "/admin/trust", files=cer(pki().root))
    with db.connection_context():
        anchor = TrustAnchor.get()
    response = post(client, f"/admin/trust/anchors/{anchor.id}/deactivate", "/admin/trust")
    assert response.status_code == 303
    assert "Đã ngừng</span>" in client.get("/admin/trust").text
    assert post(client, "/admin/trust/anchors/9999/deactivate", "/admin/trust").status_code == 404

    assert post(client, "/admin/trust/sources", "/admin/trust", {"url": "https://ca.example.vn/ca.crl"}).status_code == 303
    with db.connection_context():
        source = CrlSource.get(CrlSource.url == "https://ca.example.vn/ca.crl")
    assert "https://ca.example.vn/ca.crl" in client.get("/admin/trust").text
    assert post(client, f"/admin/trust/sources/{source.id}/remove", "/admin/trust").status_code == 303
    assert "https://ca.example.vn/ca.crl" not in client.get("/admin/trust").text


def test_refresh_now_reports_what_happened(client, admin):
    post(client, "/admin/trust/sources", "/admin/trust", {"url": "http://127.0.0.1:9/khong-co.crl"})
    response = post(client, "/admin/trust/refresh", "/admin/trust")
    assert response.status_code == 200
    assert "có nguồn không tải được" in response.text and "lỗi: 1" in response.text
    assert "Không tải được danh sách thu hồi" in response.text


def test_only_trust_administrators_see_the_screen(client, login):
    login()
    assert client.get("/admin/trust").status_code == 403
    assert 'href="/admin/trust"' not in client.get("/").text


def test_menu_shows_the_screens(client, admin):
    home = client.get("/").text
    assert 'href="/admin/trust"' in home and 'href="/account/certificates"' in home


@pytest.fixture
def pinned(make_user):
    """The test root and intermediate pinned by a system administrator."""
    from core.signatures import trust
    from core.accounts.permissions import core_access

    p = pki()
    admin, _ = make_user("qt_trust", is_admin=True)
    with db.connection_context():
        trust.add_anchor(core_access(admin), pem(p.root.certificate))
        trust.add_anchor(core_access(admin), pem(p.intermediate.certificate))
    return p


def test_clerk_registers_and_deactivates_own_certificate(client, login, pinned):
    clerk, p = login("vana"), pinned
    page = client.get("/account/certificates")
    assert page.status_code == 200 and "Bạn chưa đăng ký chứng thư số nào" in page.text
    a = p.signer("Nguyễn Văn A", cccd="044090001234")
    # A bare .cer proves nothing: refused (issue 12 item 17).
    bare = post(client, "/account/certificates", "/account/certificates", files=cer(a))
    assert bare.status_code == 422
    added = post(client, "/account/certificates", "/account/certificates", *p12(p, a))
    assert added.status_code == 303
    page = client.get(added.headers["location"])
    assert "Đã đăng ký chứng thư số" in page.text
    assert "Nguyễn Văn A" in page.text and "CCCD:044090001234" in page.text
    assert format(a.certificate.serial_number, "X") in page.text and "Đang dùng" in page.text

    again = post(client, "/account/certificates", "/account/certificates", *p12(p, a))
    assert again.status_code == 422 and "đã được đăng ký cho tài khoản của bạn" in again.text
    expired = p.signer("Nguyễn Văn A", not_before=NOW - 500 * DAY, not_after=NOW - 3 * DAY)
    refused = post(client, "/account/certificates", "/account/certificates", *p12(p, expired))
    assert refused.status_code == 422
    day = (NOW - 3 * DAY).astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%d/%m/%Y")
    assert "đã hết hạn" in refused.text and day in refused.text

    from core.signatures.certificates import UserCertificate
    with db.connection_context():
        row = UserCertificate.get(UserCertificate.user == clerk.id)
    done = post(client, f"/account/certificates/{row.id}/deactivate", "/account/certificates")
    assert done.status_code == 303
    assert "Đã ngừng</span>" in client.get("/account/certificates").text


def test_someone_elses_certificate_cannot_be_deactivated_here(client, login, make_user, pinned):
    from core.signatures import certificates
    from core.accounts.permissions import core_access

    other, _ = make_user("thib")
    p = pinned
    with db.connection_context():
        row = certificates.register_with_key(core_access(other), other.id, *_cert_and_key(p.signer("Trần Thị B")))
    login("vana")
    response = post(client, f"/account/certificates/{row.id}/deactivate", "/account/certificates")
    assert response.status_code == 404
    with db.connection_context():
        assert certificates.UserCertificate.get_by_id(row.id).active


def test_registering_needs_a_recent_password(client, login, pinned):
    from core.models import Session

    login("vana")
    p = pinned
    token = csrf_from(client.get("/account/certificates").text)
    with db.connection_context():
        Session.update(reauth_at=dt.datetime(2020, 1, 1)).execute()
    response = client.post("/account/certificates", data={"csrf_token": token}, files=cer(p.signer()),
                           headers={"referer": "http://testserver/account/certificates"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/account/confirm?next=/account/certificates")


def test_unit_administrator_stops_a_colleagues_certificate(client, login, make_user, pinned):
    from core.signatures import certificates
    from core.accounts.access import Grant, Role
    from core.models import Unit
    from core.accounts.permissions import core_access

    with db.connection_context():
        province = Unit.get_or_none(Unit.code == "ROOT") or Unit.create(code="ROOT", name="Tỉnh Quảng Trị",
                                                                        kind="province")
        commune = Unit.create(code="AT", name="Xã Ái Tử", kind="commune", parent=province)
        other = Unit.create(code="CL", name="Xã Cam Lộ", kind="commune", parent=province)
    clerk, _ = make_user("vana", unit_code="AT")
    outsider, _ = make_user("vanc", unit_code="CL")
    with db.connection_context():
        row = certificates.register_with_key(core_access(clerk), clerk.id, *_cert_and_key(pinned.signer("Nguyễn Văn A")))
        far = certificates.register_with_key(core_access(outsider), outsider.id, *_cert_and_key(pinned.signer("Võ Văn C")))
    admin = login("qtxa", unit_code="AT")
    with db.connection_context():
        Grant.create(user=admin, role=Role.get(Role.code == "unit_admin"), unit=commune)
        assert other.id != commune.id

    page = client.get(f"/users/{clerk.id}/certificates")
    assert page.status_code == 200
    assert "Chứng thư số của Người dùng vana" in page.text and "Nguyễn Văn A" in page.text
    assert "Đăng ký chứng thư số" not in page.text  # no registration for someone else
    # Outside the administrator's unit: not found, and nothing changes.
    assert client.get(f"/users/{outsider.id}/certificates").status_code == 404
    path = f"/users/{outsider.id}/certificates/{far.id}/deactivate"
    assert post(client, path, f"/users/{clerk.id}/certificates").status_code == 404
    # Another person's certificate id under this colleague's address: not found either.
    assert post(client, f"/users/{clerk.id}/certificates/{far.id}/deactivate",
                f"/users/{clerk.id}/certificates").status_code == 404

    done = post(client, f"/users/{clerk.id}/certificates/{row.id}/deactivate", f"/users/{clerk.id}/certificates")
    assert done.status_code == 303
    assert "Đã ngừng sử dụng chứng thư số" in client.get(done.headers["location"]).text
    with db.connection_context():
        assert certificates.active_certificates(clerk.id) == []
        assert len(certificates.active_certificates(outsider.id)) == 1


def test_a_clerk_cannot_open_a_colleagues_certificates(client, login, make_user):
    colleague, _ = make_user("thib")
    login("vana")
    assert client.get(f"/users/{colleague.id}/certificates").status_code == 403


def test_usb_token_registration_downloads_a_challenge_and_uploads_the_p7s(client, login, pinned):
    # Issue 12 item 17: proof of possession with a token's detached signature over the challenge.
    login("vana")
    a = pinned.signer("Nguyễn Văn A", cccd="044090004321")
    page = client.get("/account/certificates")
    assert "Tải dữ liệu xác minh để ký" in page.text and "Cách 1" in page.text
    challenge = post(client, "/account/certificates/challenge", "/account/certificates")
    assert challenge.status_code == 200 and challenge.headers["content-disposition"].startswith("attachment;")
    assert challenge.headers["cache-control"] == "no-store"
    body = challenge.content
    assert body.startswith(b"baocao.certificate-challenge/1\n")
    p7s = {"way": "p7s"}, {"p7s": ("xac-minh.p7s", pinned.sign(body, a), "application/pkcs7-signature")}
    added = post(client, "/account/certificates", "/account/certificates", *p7s)
    assert added.status_code == 303
    assert "CCCD:044090004321" in client.get(added.headers["location"]).text
    again = post(client, "/account/certificates", "/account/certificates", *p7s)
    assert again.status_code == 422 and "dữ liệu xác minh" in again.text


def test_unit_administrator_records_the_identity_number_and_sees_the_match(client, login, make_user, pinned):
    from core.signatures import certificates
    from core.accounts.access import Grant, Role
    from core.models import Unit, User
    from core.accounts.permissions import core_access

    with db.connection_context():
        province = Unit.get_or_none(Unit.code == "ROOT") or Unit.create(code="ROOT", name="Tỉnh Quảng Trị",
                                                                        kind="province")
        commune = Unit.create(code="AT", name="Xã Ái Tử", kind="commune", parent=province)
    clerk, _ = make_user("vana", unit_code="AT")
    with db.connection_context():
        certificates.register_with_key(core_access(clerk), clerk.id,
                                       *_cert_and_key(pinned.signer("Nguyễn Văn A", cccd="044090001234")))
    admin = login("qtxa", unit_code="AT")
    with db.connection_context():
        Grant.create(user=admin, role=Role.get(Role.code == "unit_admin"), unit=commune)
    path = f"/users/{clerk.id}/certificates"
    assert "Tài khoản chưa ghi số định danh" in client.get(path).text
    bad = post(client, f"/users/{clerk.id}/identity-number", path, {"identity_number": "abc"})
    assert bad.status_code == 422 and "chỉ gồm chữ số" in bad.text
    saved = post(client, f"/users/{clerk.id}/identity-number", path, {"identity_number": "044090001234"})
    assert saved.status_code == 303
    page = client.get(saved.headers["location"]).text
    assert "Đã lưu số định danh" in page and "Khớp với tài khoản" in page
    post(client, f"/users/{clerk.id}/identity-number", path, {"identity_number": "044090005555"})
    assert "Không khớp với tài khoản" in client.get(path).text
    with db.connection_context():
        assert User.get_by_id(clerk.id).identity_number == "044090005555"
