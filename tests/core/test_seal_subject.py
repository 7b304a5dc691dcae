"""A unit's seal is the organisation's own certificate (issue 12, item 13).

Any trusted personal certificate could once be installed as a unit's seal. Now the seal's
subject names no person (no CCCD/CMND/passport number in UID or serialNumber) and names the
unit: its common name, or the unit's electronic identification code in any attribute. The
person's certificate of an employee, whose O is the unit, is refused. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from cryptography.x509.oid import NameOID

from core.signatures import signing
from core.errors import BaocaoError
from core.models import Unit
from tests.fixtures.signing import signed_world


@pytest.fixture
def w(db_session, make_settings):
    world = signed_world()
    world.settings = make_settings()
    return world


def install(w, issued, password="mk-dau"):
    return signing.install_seal(w.p["unit_admin"], w.u["aitu"].id, w.pki.pkcs12(issued, password), password,
                                settings=w.settings)


def test_the_units_organisation_certificate_is_installed(w):
    seal = install(w, w.seal)  # CN "UBND xã Ái Tử", UID MST:…, for the unit "Xã Ái Tử"
    assert signing.active_seal(w.u["aitu"].id).id == seal.id


def test_a_persons_certificate_of_the_units_employee_is_refused_with_a_message_in_both_languages(w):
    # O is the unit, CN the person, UID "CCCD:…": trusted, fit for signing, and not a seal.
    with pytest.raises(BaocaoError) as caught:
        install(w, w.me)
    assert caught.value.key == "signing.error.seal_personal"
    assert "cá nhân" in caught.value.message("vi") and "person" in caught.value.message("en")
    assert signing.active_seal(w.u["aitu"].id) is None


def test_a_persons_certificate_without_a_number_is_refused_too(w):
    # No CCCD at all: the O attribute names the unit (as on every employee's certificate), the CN does not.
    person = w.pki.signer("Lê Thị C", uid="khong-so", key_label="no-number")
    with pytest.raises(BaocaoError) as caught:
        install(w, person)
    assert caught.value.key == "signing.error.seal_other_unit"
    assert "Xã Ái Tử" in caught.value.message("vi")


def test_another_units_seal_is_refused(w):
    other = w.pki.seal("UBND xã Cam Lộ", mst="3200999888", key_label="seal-camlo")
    with pytest.raises(BaocaoError) as caught:
        install(w, other)
    assert caught.value.key == "signing.error.seal_other_unit"
    assert signing.active_seal(w.u["aitu"].id) is None


def test_a_seal_carrying_the_units_electronic_code_is_installed(w):
    Unit.update(agency_code="000.00.31.H56").where(Unit.id == w.u["aitu"].id).execute()
    coded = w.pki.seal("Văn thư cơ quan", mst="3200123456", key_label="seal-coded",
                       subject_extra=((NameOID.ORGANIZATIONAL_UNIT_NAME, "000.00.31.H56"),))
    assert install(w, coded).unit_id == w.u["aitu"].id
