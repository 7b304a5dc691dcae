"""The signing screens (issue 6): the report page offers "Ký số và gửi" with the ways this person
may sign; a .p12 upload signs and submits; a wrong password or another person's certificate comes
back as a 422 with the reasons in plain words and nothing sent; the USB-token route downloads the
bytes and takes the .p7s; each version shows its signature in words with details and downloads;
the receiver checks an undetermined signature again; the unit administrator installs the seal and
the clerk applies it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import re

import pytest

from tests.core.test_signing import PASSWORD, signed_world
from tests.web.test_report_entry import log_in
from tests.web.test_report_workflow_screens import fill, report_now, versions


@pytest.fixture
def app(make_app, make_settings, tmp_path):
    return make_app(make_settings(files_dir=str(tmp_path / "files"), require_signature=True), strict=True)


@pytest.fixture
def world(client):
    from core.db import db

    with db.connection_context():
        return signed_world()


def revision_of(text: str) -> str:
    return re.search(r'name="revision" value="(\d+)"', text).group(1)


def sign_with_p12(client, world, token, issued=None, password=PASSWORD):
    page = client.get(f"/reports/{world.report.id}")
    p12 = world.pki.pkcs12(issued or world.me, PASSWORD)
    return client.post(f"/reports/{world.report.id}/submit",
                       data={"csrf_token": token, "revision": revision_of(page.text), "provider": "pkcs12",
                             "password": password},
                       files={"p12": ("chu-ky.p12", p12, "application/x-pkcs12")}, follow_redirects=False)


def text_of(page) -> str:
    return html.unescape(re.sub(r"\s+", " ", page.text))


def test_the_page_offers_the_ways_to_sign_and_no_unsigned_button(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    page = text_of(client.get(f"/reports/{world.report.id}"))
    assert "Ký số và gửi" in page
    assert "Tệp chữ ký số (.p12)" in page and "Ký bằng USB token (tải dữ liệu, tải chữ ký lên)" in page
    assert "Con dấu số của cơ quan" not in page  # the reporter is not the clerk
    assert "Gửi không ký số" not in page
    # An unsigned POST is refused all the same.
    response = client.post(f"/reports/{world.report.id}/submit",
                           data={"csrf_token": token, "revision": revision_of(page)}, follow_redirects=False)
    assert response.status_code == 422 and "phải được ký số" in text_of(response)
    assert report_now(world).status == "draft"


def test_p12_signs_and_the_version_shows_a_valid_signature_in_words(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    response = sign_with_p12(client, world, token)
    assert response.status_code == 303, response.text[:500]
    assert report_now(world).status == "submitted"
    page = text_of(client.get(response.headers["location"]))
    assert "Đã ký số và gửi báo cáo." in page
    assert "Chữ ký số hợp lệ: Nguyễn Văn A — UBND xã Ái Tử, ký lúc" in page
    assert "CA thử nghiệm cấp dưới" in page  # the issuer, in the details
    assert "Danh sách thu hồi (CRL) đã dùng" in page
    data = client.get(f"/reports/{world.report.id}/versions/1/signed.json")
    assert data.status_code == 200 and "attachment" in data.headers["content-disposition"]
    assert data.content == versions(world)[0].canonical.encode("utf-8")
    p7s = client.get(f"/reports/{world.report.id}/versions/1/signature.p7s")
    assert p7s.status_code == 200 and p7s.content[:1] == b"\x30"
    # The receiver sees the same words.
    log_in(client, world.users["issuer"])
    assert "Chữ ký số hợp lệ: Nguyễn Văn A" in text_of(client.get(f"/reports/{world.report.id}"))


def test_wrong_password_and_another_persons_certificate_come_back_with_reasons(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    wrong = sign_with_p12(client, world, token, password="sai")
    assert wrong.status_code == 422
    assert "Mật khẩu không đúng" in text_of(wrong)
    other = sign_with_p12(client, world, token, issued=world.someone_else)
    assert other.status_code == 422
    page = text_of(other)
    assert "Chữ ký số không hợp lệ, báo cáo chưa được gửi." in page
    assert "không phải của tài khoản đã gửi báo cáo" in page
    assert report_now(world).status == "draft" and versions(world) == []


def test_usb_token_download_then_upload(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    page = client.get(f"/reports/{world.report.id}")
    revision = revision_of(page.text)
    download = client.post(f"/reports/{world.report.id}/signing/prepare",
                           data={"csrf_token": token, "revision": revision})
    assert download.status_code == 200
    assert f'filename="bao-cao-{world.report.id}-v1.json"' in download.headers["content-disposition"]
    assert json.loads(download.content)["format"] == "baocao.report/1"
    p7s = world.pki.sign(download.content, world.me)
    response = client.post(f"/reports/{world.report.id}/submit",
                           data={"csrf_token": token, "revision": revision, "provider": "external"},
                           files={"p7s": ("bao-cao.p7s", p7s, "application/pkcs7-signature")},
                           follow_redirects=False)
    assert response.status_code == 303, text_of(response)[:800]
    assert versions(world)[0].canonical.encode("utf-8") == download.content


def test_usb_token_upload_after_an_edit_is_refused(client, world):
    fill(world)
    token = log_in(client, world.users["reporter"])
    revision = revision_of(client.get(f"/reports/{world.report.id}").text)
    download = client.post(f"/reports/{world.report.id}/signing/prepare",
                           data={"csrf_token": token, "revision": revision})
    fill(world, banle="121")
    response = client.post(f"/reports/{world.report.id}/submit",
                           data={"csrf_token": token, "revision": revision, "provider": "external"},
                           files={"p7s": ("bao-cao.p7s", world.pki.sign(download.content, world.me),
                                          "application/pkcs7-signature")}, follow_redirects=False)
    assert response.status_code == 422
    assert "Báo cáo đã thay đổi sau khi bạn tải dữ liệu để ký: hãy tải lại và ký lại." in text_of(response)
    assert versions(world) == []


def test_seal_installed_by_the_unit_admin_and_applied_by_the_clerk(client, world):
    fill(world)
    token = log_in(client, _user("qtxa"))
    # The menu leads the unit administrator to their unit's seal page.
    assert client.get("/unit-seal", follow_redirects=False).headers["location"] == f"/units/{world.u['aitu'].id}/seal"
    page = client.get(f"/units/{world.u['aitu'].id}/seal")
    assert page.status_code == 200 and "Đơn vị chưa có con dấu số." in text_of(page)
    installed = client.post(f"/units/{world.u['aitu'].id}/seal/install",
                            data={"csrf_token": token, "password": "mk-dau"},
                            files={"p12": ("dau.p12", world.pki.pkcs12(world.seal, "mk-dau"), "application/x-pkcs12")},
                            follow_redirects=False)
    assert installed.status_code == 303
    assert "UBND xã Ái Tử" in text_of(client.get(installed.headers["location"]))
    # The clerk sees the seal among the ways to sign, and applies it.
    token = log_in(client, _user("vanthu"))
    page = client.get(f"/reports/{world.report.id}")
    assert "Con dấu số của cơ quan (văn thư)" in text_of(page)
    response = client.post(f"/reports/{world.report.id}/submit",
                           data={"csrf_token": token, "revision": revision_of(page.text), "provider": "seal"},
                           follow_redirects=False)
    assert response.status_code == 303
    assert "Con dấu số hợp lệ: UBND xã Ái Tử" in text_of(client.get(f"/reports/{world.report.id}"))
    # A reporter cannot reach the seal page of the unit.
    log_in(client, world.users["reporter"])
    assert client.get(f"/units/{world.u['aitu'].id}/seal").status_code == 404


def _user(username):
    from core.db import db
    from core.models import User

    with db.connection_context():
        return User.get(User.username == username)


def test_receiver_checks_an_undetermined_signature_again(client, make_settings):
    from core.signatures import trust
    from core.db import db
    from tests.fixtures.pki import der

    with db.connection_context():
        world = signed_world(crl=False)
    fill(world)
    token = log_in(client, world.users["reporter"])
    assert sign_with_p12(client, world, token).status_code == 303
    page = text_of(client.get(f"/reports/{world.report.id}"))
    assert "Chưa xác định được tình trạng thu hồi của chứng thư số" in page
    assert "Kiểm tra lại" not in page  # only the receiver checks again
    token = log_in(client, world.users["issuer"])
    assert "Kiểm tra lại" in text_of(client.get(f"/reports/{world.report.id}"))
    with db.connection_context():
        trust.upload_crl(world.admin, der(world.pki.crl(issuer=world.pki.root)))
        trust.upload_crl(world.admin, der(world.pki.crl()))
    response = client.post(f"/reports/{world.report.id}/versions/1/recheck", data={"csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303
    page = text_of(client.get(response.headers["location"]))
    assert "Đã kiểm tra lại chữ ký. Kết quả: hợp lệ." in page
    assert "Chữ ký số hợp lệ: Nguyễn Văn A" in page
    assert "Các lần kiểm tra lại" in page


def test_a_recheck_shows_the_revocation_date_next_to_the_receipt_time(client):
    # Issue 12 item 14: revoked after the report arrived — still valid, and the screen says when.
    import datetime as dt

    from core.signatures import signing
    from core.signatures import trust
    from core.db import db
    from tests.fixtures.pki import der

    with db.connection_context():
        world = signed_world(crl=False)
    fill(world)
    token = log_in(client, world.users["reporter"])
    assert sign_with_p12(client, world, token).status_code == 303
    with db.connection_context():
        received = signing.ReportSignature.get().verified_at.replace(tzinfo=dt.timezone.utc, microsecond=0)
        trust.upload_crl(world.admin, der(world.pki.crl(issuer=world.pki.root)))
        trust.upload_crl(world.admin, der(world.pki.crl(revoked=[(world.me.certificate, received + dt.timedelta(minutes=1))],
                                                        number=6)))
    token = log_in(client, world.users["issuer"])
    response = client.post(f"/reports/{world.report.id}/versions/1/recheck", data={"csrf_token": token},
                           follow_redirects=False)
    page = text_of(client.get(response.headers["location"]))
    assert "Chữ ký số hợp lệ: Nguyễn Văn A" in page
    assert "Chứng thư số bị thu hồi lúc" in page
    assert "sau thời điểm hệ thống nhận báo cáo" in page
