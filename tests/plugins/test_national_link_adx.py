"""ADX through the code mapping (plugins/national_link/adx.py, the /interop screens): the accepted figures
exported as ADX validate against the data set's schema and import back to the same figures; a changed
value shows old → new and then applies; an unmapped code is named with its place and refuses the
import, writing nothing; a DOCTYPE, a file too big or not UTF-8 is refused before it is parsed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
import xmlschema

from core.audit import AuditEvent
from core.catalogue.figures import IndicatorValue
from core.db import db
from plugins.national_link import adx, codes
from plugins.national_link.codes import CodeMap, FileRefused, MappingGap
from tests.plugins.test_national_link_codes import (CONNECTOR, EN, JANUARY, accepted, app, figures_of,  # noqa: F401
                                                    log_in, post, world)

EXPORT, IMPORT = "/p/national_link/interop/export", "/p/national_link/interop/import"
NS = "{urn:ihe:qrph:adx:2015}"
ADX_OF_JANUARY = """<?xml version="1.0" encoding="UTF-8"?>
<adx xmlns="urn:ihe:qrph:adx:2015" exported="2026-01-20T02:00:00Z">
  <group orgUnit="OU_GIOLINH" period="2025-12-15/P1M" dataSet="DS_DAN_SO">
    <dataValue dataElement="DE_DAN_SO" value="{total}"/>
    <dataValue dataElement="DE_DAN_SO" GENDER="MLE" value="5000"/>
    <dataValue dataElement="DE_DAN_SO" GENDER="FMLE" value="{women}"/>
    <dataValue dataElement="DE_LUA" value="120.5"/>
  </group>
</adx>
"""


def export_january(unit_ids):
    with db.connection_context():
        return adx.export(CONNECTOR, "nl.thang", unit_ids, [JANUARY])


def dry_run(content: bytes):
    with db.connection_context():
        return adx.dry_run(CONNECTOR, content)


def upload(client, content: bytes, fmt="adx", headers=None, name="so-lieu.xml"):
    return post(client, IMPORT, {"connector": CONNECTOR, "format": fmt},
                files={"file": (name, content, "application/xml")}, headers=headers)


def apply_fields(page: str) -> dict:
    """The hidden fields of the dry run's "apply" form."""
    form = page.split('id="interop-apply-form"', 1)[1].split("</form>", 1)[0]
    return dict(re.findall(r'type="hidden" name="(connector|format|filename|digest|payload)" value="([^"]*)"', form))


def test_the_exported_figures_validate_against_the_data_sets_schema_and_import_back_unchanged(accepted):
    gio_linh = accepted.tree.communes[0]
    exported = export_january([gio_linh.id])
    with db.connection_context():
        schema = xmlschema.XMLSchema(adx.xsd(CONNECTOR, "nl.thang").decode())
    schema.validate(exported.decode())  # raises, naming the place, on any departure from the schema

    root = ET.fromstring(exported)
    (group,) = root.findall(f"{NS}group")
    assert dict(group.attrib) == {"orgUnit": "OU_GIOLINH", "period": "2025-12-15/P1M", "dataSet": "DS_DAN_SO"}
    values = sorted((v.get("dataElement"), v.get("GENDER", ""), v.get("value")) for v in group)
    assert values == [("DE_DAN_SO", "", "10230"), ("DE_DAN_SO", "FMLE", "5230"), ("DE_DAN_SO", "MLE", "5000"),
                      ("DE_LUA", "", "120.5")]

    plan = dry_run(exported)
    assert (plan.ok, plan.changes, plan.unchanged) == (True, [], 4)
    with db.connection_context():
        done, _ = adx.apply(None, CONNECTOR, exported, "xuat.xml", plan.digest)
    assert done == {"figures": 4, "changed": 0, "unchanged": 4}
    assert figures_of(gio_linh) == {("NL0101", ""): Decimal("10230"), ("NL0101", "Nam"): Decimal("5000"),
                                    ("NL0101", "Nữ"): Decimal("5230"), ("NL0102", ""): Decimal("120.5")}


def test_a_schema_refuses_what_the_data_set_does_not_have(accepted):
    with db.connection_context():
        schema = xmlschema.XMLSchema(adx.xsd(CONNECTOR, "nl.thang").decode())
    good = ADX_OF_JANUARY.format(total="10230", women="5230")
    assert schema.is_valid(good)
    assert not schema.is_valid(good.replace('GENDER="FMLE"', 'GENDER="OTHER"'))  # not a category option
    assert not schema.is_valid(good.replace(' dataSet="DS_DAN_SO"', ""))  # a required attribute
    assert not schema.is_valid(good.replace('"DE_LUA"', '"DE_NGO"'))  # not a data element of the set
    assert not schema.is_valid(good.replace('value="5000"', 'value="năm nghìn"'))  # not a number


def test_the_screens_download_the_adx_file_and_its_schema(accepted, client):
    gio_linh, cam_lo = accepted.tree.communes
    page = client.get(f"{EXPORT}?connector={CONNECTOR}")
    assert page.status_code == 200 and "nl.thang → DS_DAN_SO" in page.text
    form = {"connector": CONNECTOR, "data_set": "nl.thang", "units": [str(gio_linh.id)], "frequency": "monthly",
            "year": "2026", "index": "1", "format": "adx"}
    response = post(client, EXPORT, form)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/adx+xml")
    assert "attachment" in response.headers["content-disposition"]
    schema = post(client, EXPORT, {**form, "format": "xsd"})
    assert schema.status_code == 200
    xmlschema.XMLSchema(schema.content.decode()).validate(response.content.decode())
    with db.connection_context():
        assert AuditEvent.select().where(AuditEvent.action == "national_link.interop.export").count() == 1

    # Cam Lộ has no accepted figure for January: said, not an empty file.
    refused = post(client, EXPORT, {**form, "units": [str(cam_lo.id)]}, headers=EN)
    assert refused.status_code == 422 and "The chosen units have no accepted figure for this period." in refused.text
    bad = post(client, EXPORT, {**form, "units": [], "index": "13"}, headers=EN)
    assert bad.status_code == 422
    assert "Choose at least one unit" in bad.text and "No such period: check the year" in bad.text


def test_a_changed_value_shows_old_and_new_then_applies_through_the_screen(accepted, client):
    gio_linh = accepted.tree.communes[0]
    content = ADX_OF_JANUARY.format(total="10240", women="5240").encode()
    preview = upload(client, content)
    assert preview.status_code == 200
    assert preview.text.count('data-code="NL0101"') == 2  # the total and Nữ change; Nam and the rice stay
    assert "<del>5.230</del> → <ins>5.240</ins>" in preview.text and "Tháng 1 năm 2026" in preview.text
    assert figures_of(gio_linh)[("NL0101", "Nữ")] == Decimal("5230")  # a dry run writes nothing

    response = post(client, "/p/national_link/interop/import/apply", apply_fields(preview.text))
    assert response.status_code == 303
    assert "Đã nhập 4 số liệu: 2 số liệu thay đổi, 2 giữ nguyên." in client.get(response.headers["location"]).text
    assert figures_of(gio_linh)[("NL0101", "Nữ")] == Decimal("5240")
    with db.connection_context():
        row = IndicatorValue.get((IndicatorValue.code == "NL0101") & (IndicatorValue.option == "Nữ")
                                 & (IndicatorValue.unit == gio_linh.id))
        assert row.source == "adx:yte"
        assert AuditEvent.select().where(AuditEvent.action == "national_link.interop.import").count() == 1


def test_an_unmapped_code_is_named_with_its_place_and_nothing_is_written(accepted, client):
    gio_linh = accepted.tree.communes[0]
    before = figures_of(gio_linh)
    content = ADX_OF_JANUARY.format(total="1", women="2").replace(
        '<dataValue dataElement="DE_LUA" value="120.5"/>',
        '<dataValue dataElement="DE_LUA" value="120.5"/><dataValue dataElement="DE_NGO" value="3"/>'
        '<dataValue dataElement="DE_DAN_SO" GENDER="UNKNOWN" value="4"/>').replace(
        "</adx>", '<group orgUnit="OU_NOWHERE" period="2025-12-15/P1M" dataSet="DS_OTHER">'
                  '<dataValue dataElement="DE_LUA" value="9"/></group></adx>').encode()
    plan = dry_run(content)
    assert not plan.ok and plan.problems == []
    named = {(u.what, u.code, u.element): [p.message for p in u.places] for u in plan.unmapped}
    assert named == {
        ("data_element", "DE_NGO", ""): [("national_link.interop.place.group_value", {"group": 1, "value": 5})],
        ("category_option", "GENDER=UNKNOWN", "DE_DAN_SO"): [("national_link.interop.place.group_value",
                                                              {"group": 1, "value": 6})],
        ("org_unit", "OU_NOWHERE", ""): [("national_link.interop.place.group", {"group": 2})],
        ("data_set", "DS_OTHER", ""): [("national_link.interop.place.group", {"group": 2})]}
    with db.connection_context():
        assert adx.apply(None, CONNECTOR, content, "x.xml", plan.digest)[0] is None
    assert figures_of(gio_linh) == before

    page = upload(client, content, headers=EN)
    assert page.status_code == 422
    assert 'data-code="DE_NGO"' in page.text and "group 1, dataValue 5" in page.text
    assert "GENDER=UNKNOWN" in page.text and "of element DE_DAN_SO" in page.text
    assert 'data-code="OU_NOWHERE"' in page.text and 'data-code="DS_OTHER"' in page.text
    assert "interop-apply-form" not in page.text and "No figure is written, none is left out." in page.text


def test_bad_periods_values_and_attributes_are_problems_with_their_places(accepted):
    content = ADX_OF_JANUARY.format(total="mười", women="5230").replace(
        'period="2025-12-15/P1M"', 'period="2026-01-02/P1M" attributeOptionCombo="PARTNER_A"').encode()
    plan = dry_run(content)
    problems = {(p.place.group, p.place.value, p.key) for p in plan.problems}
    assert problems == {(1, None, "national_link.adx.error.group_attribute"),
                        (1, 1, "national_link.period.bad_adx"), (1, 2, "national_link.period.bad_adx"),
                        (1, 3, "national_link.period.bad_adx"), (1, 4, "national_link.period.bad_adx")}
    content = ADX_OF_JANUARY.format(total="mười", women="5230").encode()
    (problem,) = dry_run(content).problems
    assert (problem.key, problem.params) == ("national_link.interop.error.value", {"value": "mười", "code": "NL0101"})


@pytest.mark.parametrize("content, key", [
    (b'<?xml version="1.0"?><!DOCTYPE adx [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
     b'<adx xmlns="urn:ihe:qrph:adx:2015" exported="2026-01-20T02:00:00Z">&lol2;</adx>',
     "national_link.adx.error.doctype"),
    (b'<?xml version="1.0"?><!DOCTYPE adx SYSTEM "file:///etc/passwd"><adx/>', "national_link.adx.error.doctype"),
    ('<?xml version="1.0" encoding="UTF-16"?><adx/>'.encode("utf-16"), "national_link.interop.error.encoding"),
    (b'<?xml version="1.0" encoding="ISO-8859-1"?><adx/>', "national_link.interop.error.encoding"),
    (b"<adx xmlns='urn:ihe:qrph:adx:2015'><group", "national_link.adx.error.xml"),
    (b"<dataValueSet/>", "national_link.adx.error.not_adx"),
    (b"   ", "national_link.interop.error.empty_file"),
])
def test_a_file_is_refused_whole_before_anything_in_it_is_read(accepted, content, key):
    with pytest.raises(FileRefused) as refused:
        dry_run(content)
    assert refused.value.key == key


def test_the_import_screen_refuses_a_doctype_and_an_oversize_file(accepted, client):
    bomb = b'<?xml version="1.0"?><!DOCTYPE adx [<!ENTITY a "aaaa">]><adx xmlns="urn:ihe:qrph:adx:2015"/>'
    page = upload(client, bomb)
    assert page.status_code == 422 and "DOCTYPE" in page.text and "interop-preview" not in page.text
    big = upload(client, b"<adx>" + b" " * codes.UPLOAD_BYTES + b"</adx>", headers=EN)
    assert big.status_code == 413 and "The file is too large: 4 MB at most." in big.text


def test_an_export_names_every_code_the_mapping_lacks_and_sends_nothing(accepted, client):
    gio_linh = accepted.tree.communes[0]
    with db.connection_context():
        CodeMap.delete().where((CodeMap.local_code == "NL0101") & (CodeMap.local_option == "Nữ")).execute()
        CodeMap.delete().where(CodeMap.local_code == "44.GIOLINH").execute()
        CodeMap.create(connector=CONNECTOR, kind="unit", local_code="44.GIOLINH", remote_code="OU_GIOLINH")
    with pytest.raises(MappingGap) as gap:
        export_january([gio_linh.id])
    assert gap.value.codes == ["NL0101 (Nữ)"]
    response = post(client, EXPORT, {"connector": CONNECTOR, "data_set": "nl.thang", "units": [str(gio_linh.id)],
                                     "frequency": "monthly", "year": "2026", "index": "1", "format": "adx"}, headers=EN)
    assert response.status_code == 422
    assert "The mapping of connector yte has no row for: NL0101 (Nữ)." in response.text


def test_a_text_figure_is_named_and_not_exported_as_adx(accepted):
    from core.api import BaocaoError, Figure, put_figures

    gio_linh = accepted.tree.communes[0]
    with db.connection_context():
        codes.save_row(None, CONNECTOR, {"kind": "value", "local_code": "NL0103", "remote_code": "DE_GHI_CHU"})
        put_figures([Figure("NL0103", gio_linh.id, *JANUARY, "actual", "Mưa lớn cuối tháng")], source="test")
    with pytest.raises(BaocaoError) as refused:
        export_january([gio_linh.id])
    assert (refused.value.key, refused.value.params) == ("national_link.adx.error.text", {"codes": "NL0103"})


def test_the_exchange_screens_need_the_mapping_right(world, client):
    log_in(client, world.reporter)
    assert client.get(EXPORT).status_code == 403
    assert client.get(IMPORT).status_code == 403
    assert upload(client, ADX_OF_JANUARY.format(total="1", women="2").encode()).status_code == 403
    log_in(client, world.operator)
    assert client.get(EXPORT).status_code == 200 and client.get(IMPORT).status_code == 200
    assert post(client, IMPORT, {"connector": CONNECTOR, "format": "adx"}).status_code == 422  # no file


def test_figures_of_a_unit_outside_the_persons_rights_are_refused(accepted, client, make_user):
    cam_lo = accepted.tree.communes[1]
    log_in(client, make_user(unit=cam_lo, roles=("national_link.operator",)))
    content = ADX_OF_JANUARY.format(total="1", women="2").encode()  # Gio Linh's figures
    page = upload(client, content, headers=EN)
    assert page.status_code == 422 and "You may not import figures of Xã Gio Linh." in page.text
    assert codes.source_of("adx", CONNECTOR) == "adx:yte"
