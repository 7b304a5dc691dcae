"""Administering trust: pinned CAs, CRLs (uploaded and fetched), and people's registered certificates."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import threading

import pytest

from core import audit
from core.accounts import login as accounts
from core.signatures import certificates
from core.signatures import trust
from core.signatures import verification
from core.accounts.access import Grant, Role
from core.errors import BaocaoError, Forbidden, NotFound
from core.models import Unit
from core.accounts.permissions import core_access
from tests.fixtures.pki import DAY, NOW, der, pem, pki, rsa_key

DATA = b"bao cao"


def _cert_and_key(issued):
    return issued.certificate, issued.key


@pytest.fixture
def world(db_session):
    province = Unit.create(code="QT", name="Tỉnh Quảng Trị", kind="province")
    commune = Unit.create(code="AT", name="Xã Ái Tử", kind="commune", parent=province)
    other = Unit.create(code="CL", name="Xã Cam Lộ", kind="commune", parent=province)

    def person(username, unit, **kwargs):
        return accounts.create_user(username, username, accounts.random_password(), unit, **kwargs)

    admin = person("quantri", province, is_admin=True)
    clerk = person("vana", commune)
    colleague = person("thib", commune)
    stranger = person("vanc", other)
    unit_admin = person("qtxa", commune)
    Grant.create(user=unit_admin, role=Role.get(Role.code == "unit_admin"), unit=commune)
    return type("World", (), dict(admin=admin, clerk=clerk, colleague=colleague, stranger=stranger,
                                  unit_admin=unit_admin, commune=commune))


def actions() -> list[str]:
    return [e.action for e in audit.AuditEvent.select().order_by(audit.AuditEvent.id)]


def pin_all(access):
    p = pki()
    trust.add_anchor(access, pem(p.root.certificate), name="CA gốc")
    trust.add_anchor(access, der(p.intermediate.certificate))
    return p


# -- anchors -----------------------------------------------------------------------------------


def test_add_anchor_records_kind_name_and_audit(world):
    admin = core_access(world.admin)
    p = pki()
    root = trust.add_anchor(admin, pem(p.root.certificate), name="  CA gốc quốc gia (thử nghiệm) ")
    inter = trust.add_anchor(admin, der(p.intermediate.certificate))
    assert (root.kind, root.name) == ("root", "CA gốc quốc gia (thử nghiệm)")
    assert (inter.kind, inter.name) == ("intermediate", "CA thử nghiệm cấp dưới")
    assert root.fingerprint == trust.fingerprint(p.root.certificate)
    assert bytes(root.der) == der(p.root.certificate)
    assert actions().count("trust.anchor_added") == 2
    # The intermediate's distribution point (the root's CRL) became a source.
    assert [s.url for s in trust.CrlSource.select()] == ["http://crl.thu-nghiem.invalid/ca-goc.crl"]


@pytest.mark.parametrize("payload, key", [
    (b"", "trust.error.no_file"),
    (b"not a certificate", "trust.error.not_a_certificate"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "trust.error.not_a_certificate"),
])
def test_add_anchor_refuses_what_is_not_a_certificate(world, payload, key):
    with pytest.raises(BaocaoError) as caught:
        trust.add_anchor(core_access(world.admin), payload)
    assert caught.value.key == key


def test_add_anchor_refuses_end_entities_and_duplicates(world):
    admin = core_access(world.admin)
    p = pki()
    with pytest.raises(BaocaoError) as caught:
        trust.add_anchor(admin, pem(p.signer().certificate))
    assert caught.value.key == "trust.error.not_ca"
    trust.add_anchor(admin, pem(p.root.certificate))
    with pytest.raises(BaocaoError) as caught:
        trust.add_anchor(admin, der(p.root.certificate))
    assert caught.value.key == "trust.error.anchor_exists"
    assert trust.TrustAnchor.select().count() == 1


def test_only_trust_administrators_change_anchors(world):
    p = pki()
    for user in (world.clerk, world.unit_admin):
        with pytest.raises(Forbidden):
            trust.add_anchor(core_access(user), pem(p.root.certificate))
    anchor = trust.add_anchor(core_access(world.admin), pem(p.root.certificate))
    with pytest.raises(Forbidden):
        trust.deactivate_anchor(core_access(world.unit_admin), anchor.id)
    with pytest.raises(Forbidden):
        trust.upload_crl(core_access(world.clerk), der(p.crl(issuer=p.root)))
    with pytest.raises(Forbidden):
        trust.refresh_crls(core_access(world.clerk))


def test_deactivate_anchor_keeps_the_row(world):
    admin = core_access(world.admin)
    anchor = trust.add_anchor(admin, pem(pki().root.certificate))
    trust.deactivate_anchor(admin, anchor.id)
    trust.deactivate_anchor(admin, anchor.id)  # twice: one audit event
    row = trust.TrustAnchor.get_by_id(anchor.id)
    assert not row.active and row.deactivated_at is not None
    assert trust.active_anchors() == []
    assert actions().count("trust.anchor_deactivated") == 1
    with pytest.raises(NotFound):
        trust.deactivate_anchor(admin, 9999)


# -- CRLs --------------------------------------------------------------------------------------


def test_upload_crl_validates_and_the_newest_is_current(world):
    admin = core_access(world.admin)
    p = pin_all(admin)
    older = trust.upload_crl(admin, der(p.crl(this_update=NOW - 3 * DAY, number=1)))
    newer = trust.upload_crl(admin, pem(p.crl(this_update=NOW - DAY, number=2)))
    again = trust.upload_crl(admin, der(p.crl(this_update=NOW - 3 * DAY, number=1)))
    assert again.id == older.id  # the same CRL is stored once
    current = trust.current_crl(trust.fingerprint(p.intermediate.certificate))
    assert current.id == newer.id and current.is_fresh()
    assert current.issuer_fingerprint == trust.fingerprint(p.intermediate.certificate)
    assert actions().count("trust.crl_uploaded") == 3


def test_forged_or_unknown_crls_are_refused(world):
    admin = core_access(world.admin)
    p = pin_all(admin)
    forged = p.crl(signed_by=rsa_key("forger"))  # the intermediate's name, another key
    rogue = p.rogue_root()
    for crl in (forged, p.crl(issuer=rogue)):
        with pytest.raises(BaocaoError) as caught:
            trust.upload_crl(admin, der(crl))
        assert caught.value.key == "trust.error.crl_untrusted"
    with pytest.raises(BaocaoError) as caught:
        trust.upload_crl(admin, b"garbage")
    assert caught.value.key == "trust.error.not_a_crl"
    assert trust.Crl.select().count() == 0


def test_delta_and_partitioned_crls_are_refused(world):
    # As the "newest" CRL they would hide revocations listed only in the full one.
    from cryptography import x509

    admin = core_access(world.admin)
    p = pin_all(admin)
    partial = [
        (x509.DeltaCRLIndicator(1), True),
        (x509.IssuingDistributionPoint(full_name=None, relative_name=None, only_contains_user_certs=True,
                                       only_contains_ca_certs=False, only_some_reasons=None, indirect_crl=False,
                                       only_contains_attribute_certs=False), True),
    ]
    for extension in partial:
        with pytest.raises(BaocaoError) as caught:
            trust.upload_crl(admin, der(p.crl(extensions=[extension], number=5)))
        assert caught.value.key == "trust.error.crl_partial"
    assert trust.Crl.select().count() == 0


def test_overview_states(world):
    admin = core_access(world.admin)
    p = pin_all(admin)
    trust.upload_crl(admin, der(p.crl(this_update=NOW - 10 * DAY, next_update=NOW - DAY)))
    anchors, crls, _ = trust.overview()
    assert len(anchors) == 2
    states = {c.anchor.kind: c.state for c in crls}
    assert states == {"root": "missing", "intermediate": "stale"}


def test_sources_are_checked_and_removable(world):
    admin = core_access(world.admin)
    for url in ("ftp://example.org/x.crl", "file:///etc/passwd", "javascript:alert(1)", ""):
        with pytest.raises(BaocaoError) as caught:
            trust.add_source(admin, url)
        assert caught.value.key == "trust.error.bad_url"
    source = trust.add_source(admin, "https://ca.example.vn/crl/ca.crl")
    trust.deactivate_source(admin, source.id)
    assert trust.overview()[2] == []
    assert actions()[-2:] == ["trust.crl_source_added", "trust.crl_source_removed"]


class _Server:
    """A real HTTP server on localhost serving a directory."""

    def __init__(self, directory):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        handler.log_message = lambda *a, **k: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_refresh_fetches_from_a_real_server(world, tmp_path):
    admin = core_access(world.admin)
    p = pin_all(admin)
    trust.deactivate_source(admin, trust.CrlSource.get().id)  # the .invalid root CRL address
    signer = p.signer("Nguyễn Văn A")
    (tmp_path / "ca.crl").write_bytes(der(p.crl(revoked=[signer.certificate])))
    (tmp_path / "root.crl").write_bytes(pem(p.crl(issuer=p.root)))
    (tmp_path / "forged.crl").write_bytes(der(p.crl(signed_by=rsa_key("forger"))))
    (tmp_path / "junk.crl").write_bytes(b"<html>not found</html>")
    with _Server(tmp_path) as server:
        for name in ("ca.crl", "root.crl", "forged.crl", "junk.crl", "missing.crl"):
            trust.add_source(admin, server.url(name))
        first = trust.refresh_crls(admin)
        second = trust.refresh_crls()  # the hourly job: no actor
    assert (first.fetched, first.unchanged, first.failed) == (2, 0, 3)
    assert (second.fetched, second.unchanged, second.failed) == (0, 2, 3)
    errors = {s.url.rsplit("/", 1)[1]: s.last_error for s in trust.CrlSource.select().where(trust.CrlSource.active)}
    assert errors == {"ca.crl": "", "root.crl": "", "forged.crl": "trust.error.crl_untrusted",
                      "junk.crl": "trust.error.not_a_crl", "missing.crl": "trust.error.fetch_failed"}
    assert trust.Crl.select().count() == 2
    assert all(c.source.startswith("http://127.0.0.1:") for c in trust.Crl.select())
    # The fetched CRL is used at once.
    verdict = verification.verify(DATA, p.sign(DATA, signer))
    assert "trust.problem.revoked" in [x.key for x in verdict.problems]
    refreshed = [json.loads(e.details) for e in audit.AuditEvent.select().where(
        audit.AuditEvent.action == "trust.crl_refreshed").order_by(audit.AuditEvent.id)]
    assert refreshed == [{"fetched": 2, "unchanged": 0, "failed": 3}, {"fetched": 0, "unchanged": 2, "failed": 3}]


def test_source_bound_to_an_anchor_takes_only_its_crl(world, tmp_path):
    admin = core_access(world.admin)
    p = pin_all(admin)
    trust.deactivate_source(admin, trust.CrlSource.get().id)
    root_anchor = trust.TrustAnchor.get(trust.TrustAnchor.kind == "root")
    (tmp_path / "x.crl").write_bytes(der(p.crl()))  # the intermediate's CRL at the root's address
    with _Server(tmp_path) as server:
        trust.add_source(admin, server.url("x.crl"), anchor_id=root_anchor.id)
        result = trust.refresh_crls(admin)
    assert result.failed == 1 and trust.Crl.select().count() == 0


def test_refresh_job_is_scheduled_hourly(settings, world):
    from core.jobs import make_huey

    huey = make_huey(settings, immediate=True)
    names = lambda minute: [t.name for t in huey.read_periodic(dt.datetime(2026, 1, 5, 9, minute))]  # noqa: E731
    assert "core.refresh_crls" in names(20) and "core.refresh_crls" not in names(21)
    task = next(t for t in huey.read_periodic(dt.datetime(2026, 1, 5, 9, 20)) if t.name == "core.refresh_crls")
    assert huey.execute(task) == 0
    assert actions()[-1] == "trust.crl_refreshed"


# -- registered certificates -------------------------------------------------------------------


def test_register_own_certificate(world):
    p = pin_all(core_access(world.admin))
    a = p.signer("Nguyễn Văn A")
    row = certificates.register_with_key(core_access(world.clerk), world.clerk.id, a.certificate, a.key)
    assert row.name == "Nguyễn Văn A" and row.serial == format(a.certificate.serial_number, "X")
    assert "CCCD:" in row.subject and "CA thử nghiệm cấp dưới" in row.issuer
    assert row.not_after > row.not_before and row.active and row.added_by_id == world.clerk.id
    assert certificates.active_certificates(world.clerk.id) == [a.certificate]
    assert actions()[-1] == "trust.certificate_registered"
    # Its CRL address is now fetched.
    assert "http://crl.thu-nghiem.invalid/ca-thu-nghiem.crl" in [s.url for s in trust.CrlSource.select()]
    # The registered certificate is what a submission is bound to.
    assert verification.verify(DATA, p.sign(DATA, a),
                               expected=certificates.active_certificates(world.clerk.id)).status != "invalid"


def test_register_refuses_untrusted_expired_unfit_and_taken(world):
    p = pin_all(core_access(world.admin))
    clerk = core_access(world.clerk)
    cases = [
        (p.signer(issuer=p.rogue_root()), "trust.problem.issuer_impostor"),
        (p.signer(not_before=NOW - 400 * DAY, not_after=NOW - DAY), "trust.problem.expired"),
        (p.signer(key_usage={"key_encipherment": True}), "trust.problem.key_usage"),
        (p.intermediate, "trust.problem.signer_is_ca"),  # a CA certificate, not a person's (item 16)
    ]
    for issued, key in cases:
        with pytest.raises(BaocaoError) as caught:
            certificates.register_with_key(clerk, world.clerk.id, issued.certificate, issued.key)
        assert caught.value.key == key
    a = p.signer()
    certificates.register_with_key(clerk, world.clerk.id, a.certificate, a.key)
    with pytest.raises(BaocaoError) as caught:
        certificates.register_with_key(clerk, world.clerk.id, a.certificate, a.key)
    assert caught.value.key == "trust.error.certificate_registered"
    with pytest.raises(BaocaoError) as caught:
        certificates.register_with_key(core_access(world.colleague), world.colleague.id, a.certificate, a.key)
    assert caught.value.key == "trust.error.certificate_other_account"


def test_who_may_register_and_deactivate(world):
    p = pin_all(core_access(world.admin))
    a = p.signer()
    # Nobody registers for a colleague except their unit administrator.
    with pytest.raises(NotFound):
        certificates.register_with_key(core_access(world.colleague), world.clerk.id, a.certificate, a.key)
    row = certificates.register_with_key(core_access(world.clerk), world.clerk.id, a.certificate, a.key)
    for outsider in (world.colleague, world.stranger):
        with pytest.raises(NotFound):
            certificates.deactivate(core_access(outsider), row.id)
    certificates.deactivate(core_access(world.unit_admin), row.id)
    row = certificates.UserCertificate.get_by_id(row.id)
    assert not row.active and row.deactivated_by_id == world.unit_admin.id
    assert certificates.active_certificates(world.clerk.id) == []
    assert [c.id for c in certificates.certificates_of(world.clerk.id)] == [row.id]
    event = audit.AuditEvent.select().order_by(audit.AuditEvent.id.desc()).first()
    assert (event.action, event.object_type, event.object_id) == ("trust.certificate_deactivated", "user",
                                                                  str(world.clerk.id))
    # Once deactivated, another account may register it (the token changed hands).
    certificates.register_with_key(core_access(world.colleague), world.colleague.id, a.certificate, a.key)


def test_deactivate_own_certificate(world):
    p = pin_all(core_access(world.admin))
    row = certificates.register_with_key(core_access(world.clerk), world.clerk.id, *_cert_and_key(p.signer()))
    certificates.deactivate(core_access(world.clerk), row.id)
    assert certificates.active_certificates(world.clerk.id) == []


# -- issue 12 item 17: registration proves possession of the key and matches the identity number -----


def _proof(p, issued, challenge):
    return p.sign(certificates.challenge_bytes(challenge), issued)


def test_a_certificate_alone_no_longer_registers(world):
    # Anyone can get a colleague's public certificate; it must not bind to their account.
    p = pin_all(core_access(world.admin))
    victim = p.signer("Nguyễn Văn A")
    with pytest.raises(BaocaoError):
        certificates.register(core_access(world.colleague), world.colleague.id, pem(victim.certificate))
    # A signature claiming the victim's certificate but made with another key: refused too.
    clerk = core_access(world.colleague)
    challenge = certificates.new_challenge(clerk, world.colleague.id)
    from tests.fixtures.pki import Issued, build_cms

    forged = build_cms(certificates.challenge_bytes(challenge),
                       Issued(victim.certificate, p.signer("Kẻ giả mạo").key, victim.chain))
    with pytest.raises(BaocaoError) as caught:
        certificates.register(clerk, world.colleague.id, forged)
    assert caught.value.key == "trust.error.cms_signature_invalid"
    assert certificates.active_certificates(world.colleague.id) == []


def test_usb_token_proof_over_the_challenge_registers_once(world):
    p = pin_all(core_access(world.admin))
    clerk = core_access(world.clerk)
    a = p.signer("Nguyễn Văn A")
    challenge = certificates.new_challenge(clerk, world.clerk.id)
    text = certificates.challenge_bytes(challenge).decode()
    assert world.clerk.username in text and challenge.nonce in text and len(challenge.nonce) == 64
    row = certificates.register(clerk, world.clerk.id, _proof(p, a, challenge))
    assert row.fingerprint == trust.fingerprint(a.certificate)
    assert certificates.CertificateChallenge.get_by_id(challenge.id).used_at is not None
    # The same proof again: the challenge is spent.
    certificates.deactivate(clerk, row.id)
    with pytest.raises(BaocaoError) as caught:
        certificates.register(clerk, world.clerk.id, _proof(p, a, challenge))
    assert caught.value.key == "trust.error.challenge_not_signed"
    # Signed over another account's challenge, or over an expired one: refused.
    other = certificates.new_challenge(core_access(world.colleague), world.colleague.id)
    with pytest.raises(BaocaoError) as caught:
        certificates.register(clerk, world.clerk.id, _proof(p, a, other))
    assert caught.value.key == "trust.error.challenge_not_signed"
    late = certificates.new_challenge(clerk, world.clerk.id)
    certificates.CertificateChallenge.update(expires_at=NOW.replace(tzinfo=None) - DAY).where(
        certificates.CertificateChallenge.id == late.id).execute()
    with pytest.raises(BaocaoError) as caught:
        certificates.register(clerk, world.clerk.id, _proof(p, a, late))
    assert caught.value.key == "trust.error.challenge_not_signed"


def test_p12_registration_signs_the_challenge_in_memory(world):
    p = pin_all(core_access(world.admin))
    a = p.signer("Nguyễn Văn A")
    row = certificates.register_with_p12(core_access(world.clerk), world.clerk.id, p.pkcs12(a), "matkhau")
    assert row.fingerprint == trust.fingerprint(a.certificate)
    with pytest.raises(BaocaoError) as caught:
        certificates.register_with_p12(core_access(world.clerk), world.clerk.id, p.pkcs12(a), "sai")
    assert caught.value.key == "signing.error.p12_password"


def test_identity_number_in_the_certificate_must_match_the_account(world):
    from cryptography.x509.oid import NameOID

    p = pin_all(core_access(world.admin))
    clerk, unit_admin = core_access(world.clerk), core_access(world.unit_admin)
    # Only the unit administrator records it; the person cannot change their own.
    with pytest.raises(NotFound):
        certificates.set_identity_number(clerk, world.clerk.id, "044090001234")
    with pytest.raises(BaocaoError) as caught:
        certificates.set_identity_number(unit_admin, world.clerk.id, "CCCD 12ab")
    assert caught.value.key == "trust.error.identity_number_format"
    certificates.set_identity_number(unit_admin, world.clerk.id, " 044090001234 ")
    assert actions()[-1] == "trust.identity_number_set"
    someone = p.signer("Trần Văn B", cccd="044090009999")
    with pytest.raises(BaocaoError) as caught:
        certificates.register_with_key(clerk, world.clerk.id, someone.certificate, someone.key)
    assert caught.value.key == "trust.error.identity_mismatch"
    assert "044090009999" in caught.value.params["found"]
    # The number in serialNumber (2.5.4.5) counts as well as in UID; MST and CMND prefixes too.
    mine = p.signer("Nguyễn Văn A", uid="CMND:111111111",
                    subject_extra=[(NameOID.SERIAL_NUMBER, "CCCD:044090001234")])
    row = certificates.register_with_key(clerk, world.clerk.id, mine.certificate, mine.key)
    assert row.identity_match("044090001234") == "match"
    assert row.identity_match("3200123456") == "mismatch" and row.identity_match(None) == "unknown"
    assert certificates.certificate_identity_numbers(p.seal(mst="3200123456").certificate) == ["3200123456"]
