"""Signing a report: the signature providers, the signatures kept on versions, the unit's seal.

A signature covers the canonical bytes of one version (``core.reporting.workflow``, format
``baocao.report/1``). Those bytes name the version number, who submits and when, so they are frozen
*before* the version exists: ``report_workflow.prepare`` computes them for the report as saved at
a revision, with ``submitted_at`` = the time of preparing. Then:

- ``pkcs12`` — the person gives their .p12/.pfx file and its password for this one signing; the
  key signs the prepared bytes in memory and is dropped. Neither the file nor the password is
  stored or logged anywhere.
- ``external`` — for a USB token and its vendor's signing tool: the person downloads the prepared
  bytes (``bao-cao-<id>-v<n>.json``; a ``SigningRequest`` row keeps them, so downloading again gives
  the same bytes), signs them outside as a detached CMS, and uploads the ``.p7s`` (DER or PEM). The
  upload is checked against exactly those bytes; if the report's revision moved meanwhile, it is
  refused ("the report changed after you downloaded it").
- ``seal`` — the organisation's signature (TT 41/2017 Art. 6: applied by the văn thư): a key held
  on the server, encrypted at rest with Fernet under a key derived from ``settings.secret_key``
  (HKDF, its own purpose label), installed by a unit administrator from a PKCS#12 file, usable only
  with ``core.report.seal`` at the report's unit.

Plugins add providers with the hook ``register_signature_providers`` (objects with the attributes
and methods of ``Provider``).

``sign_and_submit`` is the one way a signed submission happens: freeze (or load) the bytes, get the
CMS from the provider, verify it (``core.signatures.verification.verify``, bound to the submitter's registered
certificates or to the unit's seal certificate) *before* any write transaction (security.md §4.2),
then ``report_workflow.submit`` creates the version and, in the same transaction, the
``ReportSignature`` (signature, signer, result, evidence) and the audit event. An invalid signature
is refused with its reasons and nothing is saved but the audit of the refusal. An indeterminate one
(no fresh CRL) is accepted and shown as such; the receiver may check it again later
(``recheck``), which appends a ``SignatureCheck`` and never rewrites the first result.

Timeliness is judged on the time the server received the submission, not the time in the bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from peewee import BlobField, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from core import audit, keys
from core.reporting import data as rd
from core.reporting import workflow as wf
from core.db import CoreModel, Prepared, transaction
from core.errors import BaocaoError, Forbidden, NotFound
from core.models import Unit, User, utcnow
from core.reporting.opening import Report
from core.signatures.certificates import active_certificates, certificate_identities
from core.signatures.files import load_p12, read_p7s
from core.units.tree import ancestor_ids

SEAL = "core.report.seal"
UNIT_ADMIN = "core.unit.admin"
KINDS = ("personal", "seal")


# -- models ---------------------------------------------------------------------------------------


class SigningRequest(CoreModel):
    """The bytes handed out for signing outside (provider ``external``), one per person and revision."""

    report = ForeignKeyField(Report, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")
    revision = IntegerField()
    number = IntegerField()  # the version number the bytes name
    prepared_at = DateTimeField()
    canonical = TextField()
    sha256 = CharField(max_length=64)

    class Meta:
        indexes = ((("report", "revision", "user"), True),)


class ReportSignature(CoreModel):
    """The signature on one version, and the result of checking it when it was received."""

    version = ForeignKeyField(wf.ReportVersion, backref="signatures", on_delete="CASCADE", unique=True)
    provider = CharField(max_length=60)
    kind = CharField(max_length=10)  # personal | seal
    cms = BlobField()
    signer_name = CharField(max_length=255)
    signer_subject = TextField()
    signer_serial = CharField(max_length=64)
    issuer_subject = TextField()
    fingerprint = CharField(max_length=64)
    signing_time = DateTimeField(null=True)
    status = CharField(max_length=14)  # valid | indeterminate (invalid ones are refused)
    problems = TextField(default="[]")  # [{"key", "params"}]
    evidence = TextField(default="{}")
    verified_at = DateTimeField(default=utcnow)  # = the time of receipt
    signed_by = ForeignKeyField(User, null=True, on_delete="SET NULL")


class SignatureCheck(CoreModel):
    """A later check of a kept signature (a fresh CRL has come): appended, never replacing the first."""

    signature = ForeignKeyField(ReportSignature, backref="checks", on_delete="CASCADE")
    status = CharField(max_length=14)
    problems = TextField(default="[]")
    evidence = TextField(default="{}")
    checked_at = DateTimeField(default=utcnow)
    checked_by = ForeignKeyField(User, null=True, on_delete="SET NULL")


class OrgSeal(CoreModel):
    """A unit's organisation signature: certificate, chain and the private key, encrypted."""

    unit = ForeignKeyField(Unit, on_delete="CASCADE")
    der = BlobField()
    chain = TextField(default="")  # PEM of the CA certificates above it, nearest first
    fingerprint = CharField(max_length=64)
    subject = TextField()
    name = CharField(max_length=255)
    serial = CharField(max_length=64)
    not_after = DateTimeField()
    key = TextField()  # Fernet token of the PKCS#8 DER key
    active = BooleanField(default=True)
    installed_at = DateTimeField(default=utcnow)
    installed_by = ForeignKeyField(User, null=True, on_delete="SET NULL")

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(bytes(self.der))

    def chain_certificates(self) -> list:
        return x509.load_pem_x509_certificates(self.chain.encode()) if self.chain.strip() else []


# -- what a signed submission carries -------------------------------------------------------------


@dataclass
class Signed:
    """A verified signature over prepared bytes, handed to ``report_workflow.submit``."""

    prepared: wf.Prepared
    provider: str
    kind: str
    cms: bytes
    verdict: object  # core.signatures.verification.Verdict

    def attach(self, version, actor) -> ReportSignature:
        """Keep the signature on the version just created (inside submit's transaction)."""
        v = self.verdict
        return ReportSignature.create(
            version=version, provider=self.provider, kind=self.kind, cms=self.cms,
            signer_name=(v.signer_name or "")[:255], signer_subject=v.signer_subject or "",
            signer_serial=(v.signer_serial or "")[:64], issuer_subject=v.issuer_subject or "",
            fingerprint=v.fingerprint or "", signing_time=_naive(v.signing_time), status=v.status,
            problems=_problems_json(v), evidence=json.dumps(v.evidence, ensure_ascii=False, sort_keys=True,
                                                           default=str),
            verified_at=_naive(v.checked_at) or utcnow(), signed_by=actor)

    def audit_details(self) -> dict:
        v = self.verdict
        return {"provider": self.provider, "kind": self.kind, "signature": v.status,
                "signer_serial": v.signer_serial, "issuer": v.issuer_subject, "fingerprint": v.fingerprint}


class SignatureRefused(BaocaoError):
    """The signature was checked and is not acceptable: ``verdict`` says why."""

    key = "signing.error.refused"

    def __init__(self, verdict):
        super().__init__()
        self.verdict = verdict

    def reasons(self, lang: str) -> list[str]:
        return self.verdict.messages(lang)


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _problems_json(verdict) -> str:
    return json.dumps([{"key": p.key, "params": dict(getattr(p, "params", {}) or {}),
                        "blocking": getattr(p, "blocking", True)} for p in verdict.problems],
                      ensure_ascii=False, default=str)


# -- keys -----------------------------------------------------------------------------------------


def _fernet(secret_key: str) -> Fernet:
    return keys.fernet(secret_key, b"baocao/signing/seal-key/v1")  # never the two-factor key


# -- providers ------------------------------------------------------------------------------------


class Provider:
    """What a signature provider is. ``fields`` tells the form what to ask: ``p12`` + ``password``
    (a file and its password), ``p7s`` (an uploaded signature, after downloading the bytes), or nothing.
    ``sign`` returns the DER (or PEM) of a detached CMS over ``prepared.data``."""

    name = ""
    label = ""  # message keys
    help = ""
    kind = "personal"
    fields: tuple[str, ...] = ()
    two_step = False  # the bytes are downloaded first (SigningRequest)

    def usable(self, access, report) -> bool:
        return rd.can_fill(access, report)

    def expected(self, access, report) -> list:
        """The certificates the signer must be one of."""
        return active_certificates(access.actor.id)

    def sign(self, access, report, prepared, inputs: dict, settings) -> bytes:
        raise NotImplementedError  # the interface: every provider signs in its own way


class Pkcs12Provider(Provider):
    name = "pkcs12"
    label = "signing.provider.pkcs12"
    help = "signing.provider.pkcs12_help"
    fields = ("p12", "password")

    def sign(self, access, report, prepared, inputs, settings) -> bytes:
        from core.signatures.cms import sign_detached

        key, cert, chain = load_p12(inputs.get("p12") or b"", inputs.get("password") or "")
        return sign_detached(prepared.data, cert, key, chain)


class ExternalProvider(Provider):
    name = "external"
    label = "signing.provider.external"
    help = "signing.provider.external_help"
    fields = ("p7s",)
    two_step = True

    def sign(self, access, report, prepared, inputs, settings) -> bytes:
        return read_p7s(inputs.get("p7s") or b"")


class SealProvider(Provider):
    name = "seal"
    label = "signing.provider.seal"
    help = "signing.provider.seal_help"
    kind = "seal"

    def usable(self, access, report) -> bool:
        # The unit's chain as the request read it already (rd.can_fill asks for the same one).
        return (access.allowed_at(SEAL, report.unit_id) and rd.can_fill(access, report)
                and active_seal(report.unit_id) is not None)

    def expected(self, access, report) -> list:
        seal = active_seal(report.unit_id)
        return [seal.certificate()] if seal else []

    def sign(self, access, report, prepared, inputs, settings) -> bytes:
        from core.signatures.cms import sign_detached

        if not access.allowed(SEAL, ancestor_ids(report.unit_id)):
            raise BaocaoError("signing.error.seal_not_clerk")
        seal = active_seal(report.unit_id)
        if seal is None:
            raise BaocaoError("signing.error.no_seal")
        return sign_detached(prepared.data, seal.certificate(), seal_private_key(seal, settings), seal.chain_certificates())


BUILTIN_PROVIDERS = (Pkcs12Provider(), ExternalProvider(), SealProvider())


def providers(pm=None, settings=None, enabled=None) -> dict:
    """The built-in providers and those plugins register, by name (a duplicate name is skipped).
    ``enabled``: the plugins switched on for the person's unit (``Access.enabled``); a plugin
    switched off there offers no way of signing, as it offers no menu or right."""
    found = {p.name: p for p in BUILTIN_PROVIDERS}
    if pm is not None:
        for _plugin, result in pm.call_each("register_signature_providers", stage="contribution",
                                            enabled=enabled, settings=settings):
            for provider in result or ():
                name = getattr(provider, "name", "")
                if name and name not in found and callable(getattr(provider, "sign", None)):
                    found[name] = provider
    return found


def usable_providers(access, report, pm=None, settings=None) -> list:
    return [p for p in providers(pm, settings, access.enabled).values() if p.usable(access, report)]


# -- preparing and signing ------------------------------------------------------------------------


def prepare_external(access, report_id: int, *, revision: int) -> SigningRequest:
    """Freeze the bytes to sign outside; the same person and revision get the same bytes again."""
    report = rd.get_report(access, report_id)
    if not rd.can_fill(access, report):
        raise Forbidden()
    existing = _request_for(report.id, revision, access.actor.id)
    if existing is not None:
        return existing
    prepared = wf.prepare(access, report.id, revision=revision)
    with transaction():
        existing = _request_for(report.id, revision, access.actor.id)
        if existing is not None:
            return existing
        row = SigningRequest.create(report=report.id, user=access.actor, revision=revision, number=prepared.number,
                                    prepared_at=prepared.submitted_at, canonical=prepared.data.decode("utf-8"),
                                    sha256=prepared.sha256)
        audit.record("report.signing_prepared", actor=access.actor, unit=report.unit_id, object_type="report",
                     object_id=report.id, details={"revision": revision, "version": prepared.number,
                                                   "sha256": prepared.sha256})
    return row


def _request_for(report_id: int, revision: int, user_id: int) -> SigningRequest | None:
    return SigningRequest.get_or_none((SigningRequest.report == report_id) & (SigningRequest.revision == revision)
                                      & (SigningRequest.user == user_id))


def download_name(report_id: int, number: int) -> str:
    return f"bao-cao-{report_id}-v{number}.json"


def _prepared_from(request: SigningRequest) -> wf.Prepared:
    return wf.Prepared(report_id=request.report_id, revision=request.revision, number=request.number,
                       submitted_at=request.prepared_at, data=request.canonical.encode("utf-8"),
                       sha256=request.sha256)


def sign_and_submit(access, report_id: int, *, revision: int, provider: str, inputs: dict | None = None,
                    settings=None, pm=None):
    """Sign the report as saved at ``revision`` with ``provider`` and submit it; returns the version.
    Verification happens before any write; an invalid signature raises ``SignatureRefused``."""
    from core.signatures.verification import verify

    inputs = inputs or {}
    report = rd.get_report(access, report_id)
    if not rd.can_fill(access, report):
        raise Forbidden()
    done = wf.submitted_at_revision(report.id, revision)
    if done is not None:
        return done  # the same click again
    chosen = providers(pm, settings, access.enabled).get(provider)
    if chosen is None:
        raise BaocaoError("signing.error.unknown_provider")
    if chosen.kind == "seal" and not access.allowed(SEAL, ancestor_ids(report.unit_id)):
        raise BaocaoError("signing.error.seal_not_clerk")
    if chosen.kind == "seal" and active_seal(report.unit_id) is None:
        raise BaocaoError("signing.error.no_seal")
    if not chosen.usable(access, report):
        raise BaocaoError("signing.error.provider_unavailable")
    if getattr(chosen, "two_step", False):
        request = _request_for(report.id, revision, access.actor.id)
        if request is None or Report.get_by_id(report.id).revision != revision:
            raise BaocaoError("signing.error.changed")
        prepared = _prepared_from(request)
    else:
        prepared = wf.prepare(access, report.id, revision=revision)
    expected = chosen.expected(access, report)
    if not expected:
        raise BaocaoError("signing.error.no_seal" if chosen.kind == "seal" else "signing.error.no_certificate")
    cms = chosen.sign(access, report, prepared, inputs, settings)
    verdict = verify(prepared.data, cms, expected=expected, settings=settings)
    if verdict.status == "invalid":
        with transaction():
            audit.record("report.signature_refused", actor=access.actor, unit=report.unit_id, object_type="report",
                         object_id=report.id,
                         details={"provider": chosen.name, "sha256": prepared.sha256,
                                  "signer_serial": verdict.signer_serial, "issuer": verdict.issuer_subject,
                                  "problems": [p.key for p in verdict.problems]})
        raise SignatureRefused(verdict)
    signed = Signed(prepared=prepared, provider=chosen.name, kind=chosen.kind, cms=cms, verdict=verdict)
    return wf.submit(access, report.id, revision=revision, signature=signed, settings=settings)


# -- reading and checking again -------------------------------------------------------------------


def signature_of(version_id: int) -> ReportSignature | None:
    return ReportSignature.get_or_none(ReportSignature.version == version_id)


# Compiled once (core.db.Prepared): the report page reads a submitted report's signatures on every visit.
_SIGNATURES = Prepared(lambda p: ReportSignature.select().join(wf.ReportVersion)
                       .where(wf.ReportVersion.report == p.report_id))
_CHECKS = Prepared(lambda p: SignatureCheck.select().where(SignatureCheck.signature.in_(p.ids))
                   .order_by(SignatureCheck.checked_at, SignatureCheck.id))


def signatures_for(report_id: int) -> dict:
    """version id → ReportSignature (with its checks as ``.latest_check``) for a report's versions."""
    rows = list(_SIGNATURES.run(report_id=report_id))
    checks: dict[int, SignatureCheck] = {}
    if rows:
        for check in _CHECKS.run(ids=tuple(r.id for r in rows)):
            checks[check.signature_id] = check
    for row in rows:
        row.latest_check = checks.get(row.id)
    return {row.version_id: row for row in rows}


def recheck(access, signature_id: int, *, settings=None) -> SignatureCheck:
    """Check a kept signature again (e.g. once a fresh CRL is loaded): the receiver's action.
    Judged at the original time of receipt; the result is appended."""
    from core.signatures.verification import verify

    row = ReportSignature.get_or_none(ReportSignature.id == signature_id)
    if row is None:
        raise NotFound()
    version = wf.ReportVersion.get_by_id(row.version_id)
    report = rd.get_report(access, version.report_id)
    if not wf.can_receive(access, report):
        raise Forbidden()
    # Bound again to the certificates the account had when it submitted (kept in the evidence).
    binding = next((c.get("expected") for c in evidence_of(row).get("checks", []) if c.get("check") == "binding"),
                   None)
    verdict = verify(version.canonical.encode("utf-8"), bytes(row.cms), expected=binding,
                     at=row.verified_at.replace(tzinfo=dt.timezone.utc), settings=settings)
    with transaction():
        check = SignatureCheck.create(signature=row, status=verdict.status, problems=_problems_json(verdict),
                                      evidence=json.dumps(verdict.evidence, ensure_ascii=False, sort_keys=True,
                                                          default=str),
                                      checked_at=utcnow(), checked_by=access.actor)
        audit.record("report.signature_checked", actor=access.actor, unit=report.unit_id, object_type="report",
                     object_id=report.id, details={"version": version.number, "signature": verdict.status,
                                                   "signer_serial": row.signer_serial, "issuer": row.issuer_subject})
    return check


def problem_messages(problems_json: str, lang: str) -> list[str]:
    """The kept reasons, in words (dates formatted for ``lang`` as ``verification.Problem`` does)."""
    from core.signatures.verification import Problem

    return [Problem(p["key"], p.get("params") or {}, p.get("blocking", True)).message(lang)
            for p in json.loads(problems_json or "[]")]


def evidence_of(row) -> dict:
    try:
        return json.loads(row.evidence or "{}")
    except ValueError:
        return {}


# -- the unit's seal ------------------------------------------------------------------------------


_ACTIVE_SEAL = Prepared(lambda p: OrgSeal.select()
                        .where((OrgSeal.unit == p.unit_id) & (OrgSeal.active == True))  # noqa: E712
                        .order_by(OrgSeal.id.desc()).limit(1))


def active_seal(unit_id: int) -> OrgSeal | None:
    return _ACTIVE_SEAL.first(unit_id=unit_id)


def may_install_seal(access, unit_id: int) -> bool:
    return access.allowed(UNIT_ADMIN, ancestor_ids(unit_id))


def install_seal(access, unit_id: int, data: bytes, password: str, *, settings) -> OrgSeal:
    """A unit administrator installs the unit's seal from a PKCS#12 file; the previous one is retired.
    The certificate must be trusted and fit for signing now (a test signature is verified)."""
    from core.signatures.cms import sign_detached
    from core.signatures.trust import common_name, fingerprint, naive_utc
    from core.signatures.verification import verify

    unit = Unit.get_or_none(Unit.id == unit_id)
    if unit is None or not may_install_seal(access, unit_id):
        raise NotFound()
    key, cert, chain = load_p12(data, password)
    _check_seal_subject(cert, unit)
    probe = b"baocao seal installation check"
    verdict = verify(probe, sign_detached(probe, cert, key, chain), expected=[cert], settings=settings)
    if verdict.status == "invalid":
        raise SignatureRefused(verdict)
    token = _fernet(settings.secret_key).encrypt(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())).decode("ascii")
    with transaction():
        OrgSeal.update(active=False).where((OrgSeal.unit == unit.id) & (OrgSeal.active == True)).execute()  # noqa: E712
        seal = OrgSeal.create(
            unit=unit, der=cert.public_bytes(serialization.Encoding.DER),
            chain="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain),
            fingerprint=fingerprint(cert), subject=cert.subject.rfc4514_string(),
            name=common_name(cert.subject)[:255], serial=format(cert.serial_number, "X"),
            not_after=naive_utc(cert.not_valid_after_utc), key=token, installed_by=access.actor)
        audit.record("seal.installed", actor=access.actor, unit=unit.id, object_type="unit", object_id=unit.id,
                     details={"fingerprint": seal.fingerprint, "subject": seal.subject, "serial": seal.serial})
    return seal


PERSONAL_IDS = ("CCCD", "CMND", "CMT", "HC", "PASSPORT")  # a person's numbers in the Vietnamese profile


def _name_words(text: str) -> str:
    from core.i18n import fold

    return " " + " ".join(re.sub(r"[^0-9a-z]+", " ", fold(text)).split()) + " "


def _check_seal_subject(cert: x509.Certificate, unit: Unit) -> None:
    """A unit's seal is the organisation's certificate, not a person's (issue 12): its subject
    names no person (UID or serialNumber with a CCCD, CMND or passport number) and names the unit,
    by its common name ("UBND xã Ái Tử" names "Xã Ái Tử") or by the unit's electronic code in any
    attribute. The O attribute alone does not do: every employee's own certificate carries it."""
    from core.signatures.trust import common_name

    for kind, _, text in certificate_identities(cert):
        if kind in PERSONAL_IDS:
            raise BaocaoError("signing.error.seal_personal", identity=text[:40])
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    named = any(_name_words(unit.name) in _name_words(name) for name in names)
    code = _name_words(unit.agency_code or "")
    coded = code.strip() != "" and any(code in _name_words(str(a.value)) for a in cert.subject)
    if not (named or coded):
        raise BaocaoError("signing.error.seal_other_unit", subject=common_name(cert.subject)[:120], unit=unit.name)


def retire_seal(access, unit_id: int) -> None:
    if not may_install_seal(access, unit_id):
        raise NotFound()
    with transaction():
        changed = (OrgSeal.update(active=False)
                   .where((OrgSeal.unit == unit_id) & (OrgSeal.active == True)).execute())  # noqa: E712
        if changed:
            audit.record("seal.retired", actor=access.actor, unit=unit_id, object_type="unit", object_id=unit_id)


def seal_private_key(seal: OrgSeal, settings):
    try:
        der = _fernet(settings.secret_key).decrypt(seal.key.encode("ascii"))
    except (InvalidToken, ValueError) as exc:
        # The instance's secret key changed since installation: the seal must be installed again.
        raise BaocaoError("signing.error.seal_key_unreadable") from exc
    return serialization.load_der_private_key(der, password=None)


def signature_view(row: ReportSignature) -> dict:
    """What the report page shows of a kept signature: the current word (the latest check, else the
    result at receipt), who signed for which organisation, and the certificate and CRL details."""
    from core.signatures.trust import naive_utc

    latest = getattr(row, "latest_check", None)
    current = latest or row
    evidence = evidence_of(current)
    org, not_before, not_after, issuer = "", None, None, row.issuer_subject
    chain = evidence.get("chain") or evidence_of(row).get("chain") or []
    if chain:
        cert = x509.load_pem_x509_certificate(chain[0].encode("ascii"))
        names = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        org = str(names[0].value) if names else ""
        not_before, not_after = naive_utc(cert.not_valid_before_utc), naive_utc(cert.not_valid_after_utc)
        issuer = ", ".join(str(a.value) for a in cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)) \
            or cert.issuer.rfc4514_string()
    crls = [{"issuer": _common_name(c.get("issuer", "")), "this_update": _parse_time(c.get("this_update")),
             "next_update": _parse_time(c.get("next_update"))} for c in evidence.get("crls") or []]
    # The signer's revocation (or hold) date, shown next to the receipt time: only one dated at or
    # before the receipt counts against the signature (core.signatures.verification._revocation).
    revocation = next((c for c in evidence.get("checks") or [] if c.get("check") == "revocation"
                       and c.get("certificate") == row.fingerprint and c.get("revoked_at")), None)
    revoked = {"at": _parse_time(revocation["revoked_at"]), "after_receipt": bool(revocation.get("after_receipt")),
               "on_hold": "on_hold" in (revocation.get("outcome"), revocation.get("after_receipt"))} \
        if revocation else None
    return {"row": row, "status": current.status, "problems": current.problems, "org": org if org != row.signer_name
            else "", "not_before": not_before, "not_after": not_after, "issuer": issuer, "crls": crls,
            "revoked": revoked,
            "checks": list(SignatureCheck.select().where(SignatureCheck.signature == row.id)
                           .order_by(SignatureCheck.checked_at, SignatureCheck.id)) if latest else []}


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return _naive(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _common_name(rfc4514: str) -> str:
    try:
        names = x509.Name.from_rfc4514_string(rfc4514).get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    except ValueError:
        return rfc4514
    return str(names[0].value) if names else rfc4514
