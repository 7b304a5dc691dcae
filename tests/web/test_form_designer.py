"""The form designer screens (issue 5): a designer builds a monthly form from the indicator
catalogue, the standard columns, a computed row and column, rules and an outline, previews it with
sample numbers, publishes it and links it to a regime; refused changes come back with the place
and the input kept; rights are those of the owner unit."""

from __future__ import annotations

import re

import pytest

from tests.conftest import HX, csrf_from


def _catalogue():
    from core.catalogue import indicators as ind
    from core.db import db

    with db.connection_context():
        ind.save_group("KX03", "Thương mại, dịch vụ, du lịch", "province")
        for code, name, unit, dis in (
                ("KX0301", "Tổng mức bán lẻ hàng hóa và doanh thu dịch vụ tiêu dùng", "tỷ đồng", None),
                ("KX0305", "Doanh thu du lịch", "tỷ đồng", "Loại hình: Lữ hành; Lưu trú")):
            data = {"code": code, "name": name, "group": "KX03", "levels": "province", "unit_of_measure": unit,
                    "aggregation": "sum"}
            if dis:
                data["disaggregation"] = dis
            ind.save_indicator(data)


def _unit(code, name, kind, parent_code=None):
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        parent = Unit.get(Unit.code == parent_code) if parent_code else None
        return (Unit.get_or_none(Unit.code == code) or Unit.create(code=code, name=name, kind=kind, parent=parent)).id


def grant(user, role: str, unit_code: str):
    from core.accounts.access import Grant, Role
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        Grant.create(user=user.id, role=Role.get(Role.code == role), unit=Unit.get(Unit.code == unit_code))


@pytest.fixture
def admin(client, login):
    login(is_admin=True)
    _unit("STC", "Sở Tài chính", "department", "ROOT")
    _catalogue()
    return csrf_from(client.get("/forms").text)


def create(client, token, code="BM-THANG", **changes) -> int:
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        owner = Unit.get(Unit.code == "STC").id
    data = {"code": code, "name": "Biểu chỉ tiêu hằng tháng", "owner_unit_id": str(owner), "frequency": "monthly",
            "csrf_token": token, **changes}
    response = client.post("/forms/new", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text[:3000]
    return int(re.search(r"/forms/(\d+)", response.headers["location"]).group(1))


def stamp_of(html: str) -> str:
    return re.search(r'name="stamp" value="([0-9a-f]+)"', html).group(1)


class Designer:
    """Posts designer actions the way the page does (htmx), carrying the stamp along."""

    def __init__(self, client, token, form_id):
        self.client, self.token, self.form_id = client, token, form_id
        self.stamp = stamp_of(client.get(f"/forms/{form_id}/design").text)

    def post(self, action, expect=200, **data):
        body = {"csrf_token": self.token, "stamp": self.stamp, **data}
        response = self.client.post(f"/forms/{self.form_id}/design/{action}", data=body, headers=HX)
        assert response.status_code == expect, response.text[:3000]
        assert "<html" not in response.text
        self.stamp = stamp_of(response.text)
        return response.text

    def definition(self) -> dict:
        from core.regimes import forms as fm
        from core.db import db

        with db.connection_context():
            return fm.draft_of(fm.Form.get_by_id(self.form_id)).data()


def build(designer: Designer) -> None:
    designer.post("add_indicators", codes=["KX0301", "KX0305"])
    designer.post("add_preset")
    designer.post("add_computed", key="tong", label="Cộng", formula="kx0301 + kx0305", decimals="1")


def test_a_designer_builds_previews_publishes_and_links_a_form(client, admin):
    token = admin
    assert "Tạo biểu mẫu" in client.get("/forms").text
    form_id = create(client, token)
    page = client.get(f"/forms/{form_id}/design")
    assert page.status_code == 200 and "Thêm chỉ tiêu từ danh mục" in page.text
    # The catalogue is searched without diacritics.
    found = client.get(f"/forms/{form_id}/design/indicators", params={"q": "doanh thu du lich"}, headers=HX)
    assert "KX0305" in found.text and "KX0301" not in found.text
    d = Designer(client, token, form_id)
    html = d.post("add_indicators", codes=["KX0301", "KX0305"], split="1")
    assert "Doanh thu du lịch" in html and "Lữ hành" in html
    rows = d.definition()["rows"]
    assert [r["key"] for r in rows] == ["kx0301", "kx0305", "kx0305_lu_hanh", "kx0305_luu_tru"]
    assert rows[0]["unit"] == "tỷ đồng" and rows[2]["option"] == "Lữ hành"
    html = d.post("add_preset")
    assert "Tháng {m}/{y-1}" in html
    cols = d.definition()["columns"]
    assert [c["key"] for c in cols][:6] == ["cung_ky", "luy_ke_cung_ky", "ke_hoach_nam", "thang_truoc", "thang",
                                            "luy_ke"]
    assert cols[5]["accumulate"] == "thang" and cols[6]["formula"] == "thang / thang_truoc * 100"
    d.post("add_computed", key="tong", label="Cộng", formula="kx0301 + kx0305", decimals="1")
    d.post("add_column", key="chenh", kind="computed", label="Chênh lệch so với tháng trước",
           formula="thang - thang_truoc", decimals="1")
    assert d.definition()["columns"][-1]["formula"] == "thang - thang_truoc"
    d.post("add_section", title="Kết quả thực hiện", guidance="Nêu kết quả chủ yếu.", required="1")
    d.post("add_section", title="Kiến nghị")
    assert [s["key"] for s in d.definition()["outline"]] == ["s1", "s2"]
    d.post("move_section", key="s2", direction="up")
    assert [s["key"] for s in d.definition()["outline"]] == ["s2", "s1"]
    # The preview: sample numbers, computed cells filled.
    preview = client.get(f"/forms/{form_id}/design/preview", params={"index": "3"}, headers=HX)
    assert "Số liệu mẫu" in preview.text and "Tháng 3/" in preview.text
    from core.regimes import forms as fm
    from core.db import db
    from core.reporting.data import preview_sheet

    with db.connection_context():
        sheet = preview_sheet(fm.draft_of(fm.Form.get_by_id(form_id)), "monthly", 2026, 3)
    total = sheet.values[("tong", "thang")]
    assert total == sheet.values[("kx0301", "thang")] + sheet.values[("kx0305", "thang")]
    assert re.sub(r"\D", "", str(total)) in preview.text.replace(".", "")
    # Publish, then the detail page shows version 1 in use.
    published = client.post(f"/forms/{form_id}/publish", data={"csrf_token": token}, follow_redirects=False)
    assert published.status_code == 303
    detail = client.get(published.headers["location"])
    assert "Đã công bố" in detail.text and "Đang dùng" in detail.text
    # A read-only view of version 1.
    view = client.get(f"/forms/{form_id}", params={"version": "1"})
    assert "Phiên bản 1" in view.text and "Tổng mức bán lẻ" in view.text
    # A new version: draft 2 copied from 1, opened in the designer.
    nv = client.post(f"/forms/{form_id}/new-version", data={"csrf_token": token}, follow_redirects=False)
    assert nv.status_code == 303 and f"/forms/{form_id}/design" in nv.headers["location"]
    with db.connection_context():
        versions = fm.versions(fm.Form.get_by_id(form_id))
    assert [(v.version, v.status) for v in versions] == [(2, "draft"), (1, "published")]
    assert versions[0].definition == versions[1].definition
    # A copy under a new code.
    copied = client.post(f"/forms/{form_id}/copy", data={"csrf_token": token, "code": "BM-THANG-2",
                                                         "name": "Bản sao"}, follow_redirects=False)
    assert copied.status_code == 303
    copy_page = client.get(copied.headers["location"])
    assert "BM-THANG-2" in copy_page.text and "Nháp" in copy_page.text
    # Linked to a regime: the regime form offers the published form of the same frequency.
    regime_page = client.get("/regimes/new")
    assert "Biểu mẫu số liệu (thành phần 9, 10)" in regime_page.text
    assert f'<option value="{form_id}"' in regime_page.text
    assert 'BM-THANG-2' not in regime_page.text  # not published: not offered
    # The list shows the form, its latest version and is searched without diacritics.
    listing = client.get("/forms", params={"q": "bieu chi tieu"}, headers=HX)
    assert "BM-THANG" in listing.text and "Phiên bản 2" in listing.text
    assert "BM-THANG" not in client.get("/forms", params={"q": "khong co"}, headers=HX).text


def test_the_new_form_comes_back_with_field_messages_and_input_kept(client, admin):
    token = admin
    response = client.post("/forms/new", data={"code": "bm thang!", "name": "", "frequency": "monthly",
                                               "csrf_token": token})
    assert response.status_code == 422
    assert "Mã biểu mẫu gồm chữ in hoa" in response.text and "Nhập tên biểu mẫu." in response.text
    assert 'value="bm thang!"' in response.text
    create(client, token)
    taken = client.post("/forms/new", data={"code": "BM-THANG", "name": "Khác", "csrf_token": token})
    assert taken.status_code == 422 and "Đã có biểu mẫu mang mã này" in taken.text


def test_rules_are_checked_as_typed_and_refused_at_the_character(client, admin):
    token = admin
    form_id = create(client, token)
    d = Designer(client, token, form_id)
    build(d)
    # The live check points at the character and names unknown keys.
    check = client.get(f"/forms/{form_id}/design/check", params={"expression": "thang >= * 2", "want": "bool"},
                       headers=HX)
    assert "ở ký tự 10" in check.text and "\n         ^" in check.text
    unknown = client.get(f"/forms/{form_id}/design/check", params={"expression": "thangg >= 0", "want": "bool"},
                         headers=HX)
    assert "thangg" in unknown.text and "Không có dòng hoặc cột" in unknown.text
    ok = client.get(f"/forms/{form_id}/design/check", params={"expression": "thang >= 0", "want": "bool"},
                    headers=HX)
    assert "Công thức hợp lệ" in ok.text
    number = client.get(f"/forms/{form_id}/design/check", params={"expression": "thang + 1", "want": "bool"},
                        headers=HX)
    assert "điều kiện đúng/sai" in number.text
    # A bad rule is not saved; the form comes back with what was typed and the error at its place.
    before = d.definition()
    html = d.post("add_rule", expect=422, key="KHONG_AM", severity="blocker", expression="thang >= (0",
                  message_vi="{row}: không được âm", message_en="{row}: cannot be negative")
    assert "ở ký tự" in html and 'value="thang &gt;= (0"' in html and "{row}: không được âm" in html
    assert d.definition() == before
    d.post("add_rule", key="KHONG_AM", severity="blocker", expression="thang >= 0",
           message_vi="{row}: không được âm", message_en="{row}: cannot be negative")
    html = d.post("add_rule", key="KE_HOACH", severity="warning", expression="luy_ke <= ke_hoach_nam",
                  rows=["kx0301"])
    rules = d.definition()["rules"]
    assert [r["key"] for r in rules] == ["KHONG_AM", "KE_HOACH"] and rules[1]["rows"] == ["kx0301"]
    assert "Chặn" in html and "Cảnh báo" in html
    # The preview shows a rule's message with the row's name.
    d.post("add_rule", key="NHO", severity="info", expression="thang < 0", message_vi="{row}: thông tin")
    preview = client.get(f"/forms/{form_id}/design/preview", params={"index": "1"}, headers=HX)
    assert "Tổng mức bán lẻ hàng hóa và doanh thu dịch vụ tiêu dùng: thông tin" in preview.text


def test_a_cycle_is_refused_pointing_at_a_cell(client, admin):
    token = admin
    form_id = create(client, token)
    d = Designer(client, token, form_id)
    build(d)
    d.post("add_computed", key="tong2", label="Cộng 2", formula="tong")
    html = d.post("edit_row", expect=422, original="tong", key="tong", label="Cộng", formula="kx0301 + tong2")
    assert "Công thức vòng tròn" in html and "cell tong" in html
    assert 'value="kx0301 + tong2"' in html  # the edit form stays open with the input
    assert next(r for r in d.definition()["rows"] if r["key"] == "tong")["formula"] == "kx0301 + kx0305"


def test_renaming_a_key_renames_its_references_and_deleting_a_used_one_is_refused(client, admin):
    token = admin
    form_id = create(client, token)
    d = Designer(client, token, form_id)
    build(d)
    d.post("add_rule", key="R1", expression="tong >= kx0301", rows=[], columns=["thang"])
    html = d.post("delete_row", expect=422, key="kx0305")
    assert "Không xóa được “kx0305”" in html and "Cộng" in html
    d.post("edit_row", original="kx0301", key="banle", label="Bán lẻ", number="1", unit="tỷ đồng")
    definition = d.definition()
    assert next(r for r in definition["rows"] if r["key"] == "tong")["formula"] == "banle + kx0305"
    assert definition["rules"][0]["expression"] == "tong >= banle"
    d.post("edit_column", original="thang", key="thang_nay", label="Tháng {m}/{y}", kind="input",
           value_kind="actual", period="current")
    definition = d.definition()
    cols = {c["key"]: c for c in definition["columns"]}
    assert cols["luy_ke"]["accumulate"] == "thang_nay" and cols["so_cung_ky"]["formula"] == "thang_nay / cung_ky * 100"
    assert definition["rules"][0]["columns"] == ["thang_nay"]
    # Greyed cells toggle, move with the row, and go when the row goes.
    d.post("toggle_greyed", cell="kx0305.cung_ky")
    assert d.definition()["greyed"] == ["kx0305.cung_ky"]
    d.post("move_row", key="tong", direction="up")
    assert [r["key"] for r in d.definition()["rows"]] == ["banle", "tong", "kx0305"]
    d.post("delete_rule", key="R1")
    d.post("delete_row", key="tong")
    d.post("delete_row", key="kx0305")
    assert d.definition()["greyed"] == [] and [r["key"] for r in d.definition()["rows"]] == ["banle"]


def test_a_stale_draft_is_refused_with_a_reload_link(client, admin):
    token = admin
    form_id = create(client, token)
    first = Designer(client, token, form_id)
    second = Designer(client, token, form_id)
    first.post("add_section", title="Kết quả")
    html = second.post("add_section", expect=422, title="Kiến nghị của tôi")
    assert "vừa được người khác lưu" in html and "Tải lại trang" in html
    assert 'value="Kiến nghị của tôi"' in html
    assert [s["title"] for s in first.definition()["outline"]] == ["Kết quả"]


def test_publishing_an_unfinished_form_lists_its_problems(client, admin):
    token = admin
    form_id = create(client, token)
    detail = client.get(f"/forms/{form_id}")
    assert "Biểu mẫu chưa có dòng nào." in detail.text
    refused = client.post(f"/forms/{form_id}/publish", data={"csrf_token": token})
    assert refused.status_code == 422 and "Không công bố được" in refused.text
    assert "Biểu mẫu chưa có cột nào." in refused.text


def test_a_request_gets_its_form_from_the_request_screen(client, admin):
    from core.regimes import regimes as rg
    from core.db import db
    from core.models import Unit
    from core.reporting.opening import Report

    token = admin
    form_id = create(client, token, frequency="")
    d = Designer(client, token, form_id)
    build(d)
    assert client.post(f"/forms/{form_id}/publish", data={"csrf_token": token}).status_code == 200
    with db.connection_context():
        root = Unit.get(Unit.code == "ROOT").id
        commune = Unit.create(code="AT", name="Xã Ái Tử", kind="commune", parent=root)
    data = {"code": "DOT.XUAT", "name": "Báo cáo đột xuất về bão", "regime_type": "ad_hoc", "content": "Thiệt hại",
            "content_type": "both", "unit_ids": [str(commune.id)], "receiving_unit_id": str(root),
            "sending_methods": ["system"], "issuing_unit_id": str(root), "outline": "x", "data_forms": "x",
            "guidance": "x", "csrf_token": token}
    made = client.post("/regimes/new", data=data, follow_redirects=False)
    assert made.status_code == 303, made.text[:2000]
    regime_id = int(re.search(r"/regimes/(\d+)", made.headers["location"]).group(1))
    issued = client.post(f"/regimes/{regime_id}/issue", data={"csrf_token": token}, follow_redirects=False)
    assert issued.status_code == 303, issued.text[:3000]
    page = client.get(f"/regimes/{regime_id}/request")
    assert "Biểu mẫu số liệu (thành phần 9, 10)" in page.text and f'<option value="{form_id}"' in page.text
    opened = client.post(f"/regimes/{regime_id}/request", data={
        "window_start": "2026-03-02", "window_end": "2026-03-06", "deadline": "2026-03-12", "form_id": str(form_id),
        "csrf_token": token}, follow_redirects=False)
    assert opened.status_code == 303, opened.text[:3000]
    with db.connection_context():
        regime = rg.Regime.get_by_id(regime_id)
        report = Report.get(Report.regime == regime_id)
        assert regime.form_id == form_id and report.form_version.form_id == form_id
    assert "BM-THANG" in client.get(f"/regimes/{regime_id}").text


def test_rights_follow_the_owner_unit(client, admin, login, make_user):
    token = admin
    form_id = create(client, token)
    client.post("/logout", data={"csrf_token": token})
    # A viewer at the province sees the form but cannot design it.
    viewer = login(unit_code="ROOT")
    grant(viewer, "viewer", "ROOT")
    assert client.get("/forms").status_code == 200
    detail = client.get(f"/forms/{form_id}")
    assert detail.status_code == 200 and "Bạn chỉ được xem biểu mẫu này." in detail.text
    assert "Tạo biểu mẫu" not in client.get("/forms").text
    assert client.get(f"/forms/{form_id}/design").status_code == 403
    vtoken = csrf_from(detail.text)
    assert client.post(f"/forms/{form_id}/design/add_section", data={"csrf_token": vtoken, "title": "x"},
                       headers=HX).status_code == 403
    assert client.post(f"/forms/{form_id}/publish", data={"csrf_token": vtoken}).status_code == 403
    assert client.get("/forms/new").status_code == 403
    client.post("/logout", data={"csrf_token": vtoken})
    # An editor of another department may not edit a form Sở Tài chính owns.
    _unit("SYT", "Sở Y tế", "department", "ROOT")
    other = login(unit_code="SYT")
    grant(other, "regime_editor", "SYT")
    page = client.get("/forms")
    otoken = csrf_from(page.text)
    assert "Tạo biểu mẫu" in page.text
    assert client.get(f"/forms/{form_id}/design").status_code in (403, 404)
    assert client.post(f"/forms/{form_id}/design/add_section", data={"csrf_token": otoken, "title": "x"},
                       headers=HX).status_code in (403, 404)
    assert client.post(f"/forms/{form_id}/new-version", data={"csrf_token": otoken}).status_code in (403, 404)
    # ... and owner units offered are only theirs.
    new = client.get("/forms/new")
    assert "Sở Y tế" in new.text and "Sở Tài chính" not in new.text
    from core.db import db
    from core.models import Unit

    with db.connection_context():
        stc = Unit.get(Unit.code == "STC").id
    forged = client.post("/forms/new", data={"code": "BM-X", "name": "X", "owner_unit_id": str(stc),
                                             "csrf_token": otoken})
    assert forged.status_code == 403


def test_a_regime_links_a_published_form_of_its_frequency(client, admin):
    from core.db import db
    from core.models import Unit

    token = admin
    form_id = create(client, token)
    d = Designer(client, token, form_id)
    build(d)
    client.post(f"/forms/{form_id}/publish", data={"csrf_token": token})
    quarterly = create(client, token, code="BM-QUY", frequency="quarterly")
    with db.connection_context():
        root = Unit.get(Unit.code == "ROOT").id
    data = {"code": "KTXH.THANG", "name": "Báo cáo kinh tế - xã hội hằng tháng", "regime_type": "periodic",
            "content": "Tình hình", "content_type": "both", "kinds": ["department"], "receiving_unit_id": str(root),
            "sending_methods": ["system"], "level_0": "Sở → tỉnh", "from_kind_0": "department", "rule_0": "2wd",
            "frequency": "monthly", "cutoff_rule": "decree", "issuing_unit_id": str(root), "csrf_token": token}
    wrong = client.post("/regimes/new", data={**data, "form_id": str(quarterly)})
    assert wrong.status_code == 422 and "Biểu mẫu được thiết kế cho kỳ báo cáo khác" in wrong.text
    made = client.post("/regimes/new", data={**data, "form_id": str(form_id)}, follow_redirects=False)
    assert made.status_code == 303, made.text[:2000]
    detail = client.get(made.headers["location"])
    assert f'href="/forms/{form_id}"' in detail.text and "BM-THANG — Biểu chỉ tiêu hằng tháng" in detail.text
    regime_id = int(re.search(r"/regimes/(\d+)", made.headers["location"]).group(1))
    edit = client.get(f"/regimes/{regime_id}/edit")
    assert re.search(rf'<option value="{form_id}" selected>', edit.text)
    assert "BM-QUY" not in edit.text  # another frequency, and not published
    # The form's page and the list name the regime that uses it.
    assert "Báo cáo kinh tế - xã hội hằng tháng" in client.get(f"/forms/{form_id}").text


def test_without_javascript_and_in_english(client, admin):
    token = admin
    form_id = create(client, token)
    stamp = stamp_of(client.get(f"/forms/{form_id}/design").text)
    plain = client.post(f"/forms/{form_id}/design/add_section", data={"csrf_token": token, "stamp": stamp,
                                                                      "title": "Kết quả"}, follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"].endswith(f"/forms/{form_id}/design?tab=outline")
    refused = client.post(f"/forms/{form_id}/design/add_section", data={"csrf_token": token, "stamp": stamp,
                                                                        "title": "Lần hai"})
    assert refused.status_code == 422 and "<html" in refused.text and "vừa được người khác lưu" in refused.text
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": token})
    page = client.get(f"/forms/{form_id}/design", params={"tab": "rows"})
    assert "Add indicators from the catalogue" in page.text and "Design check" in page.text
    assert "Rows" in page.text and "Outline" in page.text
    listing = client.get("/forms")
    assert "Create a form" in listing.text and "Not periodic" not in listing.text


def test_an_action_on_a_published_form_goes_to_its_page(client, admin):
    token = admin
    form_id = create(client, token)
    d = Designer(client, token, form_id)
    build(d)
    client.post(f"/forms/{form_id}/publish", data={"csrf_token": token})
    response = client.post(f"/forms/{form_id}/design/add_section", data={"csrf_token": token, "stamp": d.stamp,
                                                                         "title": "x"}, headers=HX)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == f"/forms/{form_id}"
    assert client.get(f"/forms/{form_id}/design", follow_redirects=False).status_code == 303
    assert client.post(f"/forms/{form_id}/design/no_such_action", data={"csrf_token": token},
                       headers=HX).status_code == 404
